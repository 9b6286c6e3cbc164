/*
 * Native MuJoCo baseline for bench/run.ts: the raw mj_step loop on an MJCF scene, driven by a replay file of
 * episodes (start state + one ctrl row per control step) recorded from the TypeScript env, so native and WASM
 * integrate the same trajectories.
 *
 *   step MODEL.xml REPLAY.bin MIN_STEPS WARMUP_STEPS REPEATS
 *
 * REPLAY.bin is little-endian float64: a header [nq, nv, na, nmocap, nu, frameSkip, nEpisodes], then per
 * episode [nSteps, qpos(nq), qvel(nv), act(na), mocap_pos(3*nmocap), mocap_quat(4*nmocap), ctrl(nSteps*nu)].
 * Each timed repeat plays episodes in order (cycling) until at least MIN_STEPS mj_steps have run; episode starts
 * are mj_resetData + the recorded state + mj_forward, exactly as the WASM raw loop does.
 *
 * Prints one JSON line: {"version", "steps", "rates": [mj_step/s per repeat, wall clock], "cpu_rates": [per
 * process CPU second], "checksum"}.
 * Works with MuJoCo 2.2 (Debian's libmujoco-dev) and 3.x.
 */
#include <mujoco/mujoco.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
  int nsteps;
  const double* qpos;
  const double* qvel;
  const double* act;
  const double* mocap_pos;
  const double* mocap_quat;
  const double* ctrl;
} Episode;

static double clock_s(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static void start_episode(const mjModel* m, mjData* d, const Episode* ep) {
  mj_resetData(m, d);
  memcpy(d->qpos, ep->qpos, sizeof(double) * m->nq);
  memcpy(d->qvel, ep->qvel, sizeof(double) * m->nv);
  if (m->na) memcpy(d->act, ep->act, sizeof(double) * m->na);
  if (m->nmocap) {
    memcpy(d->mocap_pos, ep->mocap_pos, sizeof(double) * 3 * m->nmocap);
    memcpy(d->mocap_quat, ep->mocap_quat, sizeof(double) * 4 * m->nmocap);
  }
  mj_forward(m, d);
}

/* Plays episodes from *cursor on until at least min_steps mj_steps ran; returns the number run. */
static long play(const mjModel* m, mjData* d, const Episode* eps, int neps, int frame_skip, long min_steps,
                 int* cursor) {
  long steps = 0;
  while (steps < min_steps) {
    const Episode* ep = &eps[*cursor];
    *cursor = (*cursor + 1) % neps;
    start_episode(m, d, ep);
    for (int t = 0; t < ep->nsteps; t++) {
      memcpy(d->ctrl, ep->ctrl + (long)t * m->nu, sizeof(double) * m->nu);
      for (int k = 0; k < frame_skip; k++) mj_step(m, d);
    }
    steps += (long)ep->nsteps * frame_skip;
  }
  return steps;
}

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s MODEL.xml REPLAY.bin MIN_STEPS WARMUP_STEPS REPEATS\n", argv[0]);
    return 2;
  }
  long min_steps = atol(argv[3]);
  long warmup = atol(argv[4]);
  int repeats = atoi(argv[5]);

  char err[1000] = "";
  mjModel* m = mj_loadXML(argv[1], NULL, err, sizeof(err));
  if (!m) {
    /* The error goes to stdout as JSON so the caller can report it. */
    printf("{\"error\":\"");
    for (const char* c = err; *c; c++) {
      if (*c == '"' || *c == '\\') putchar('\\');
      putchar(*c == '\n' ? ' ' : *c);
    }
    printf("\"}\n");
    return 1;
  }

  FILE* f = fopen(argv[2], "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", argv[2]);
    return 1;
  }
  fseek(f, 0, SEEK_END);
  long bytes = ftell(f);
  fseek(f, 0, SEEK_SET);
  double* buf = malloc(bytes);
  if (fread(buf, 1, bytes, f) != (size_t)bytes) {
    fprintf(stderr, "short read on %s\n", argv[2]);
    return 1;
  }
  fclose(f);

  int nq = (int)buf[0], nv = (int)buf[1], na = (int)buf[2], nmocap = (int)buf[3], nu = (int)buf[4];
  int frame_skip = (int)buf[5], neps = (int)buf[6];
  if (nq != m->nq || nv != m->nv || na != m->na || nmocap != m->nmocap || nu != m->nu) {
    printf("{\"error\":\"replay dims nq=%d nv=%d na=%d nmocap=%d nu=%d; model has %d %d %d %d %d\"}\n", nq, nv, na,
           nmocap, nu, m->nq, m->nv, m->na, m->nmocap, m->nu);
    return 1;
  }
  Episode* eps = calloc(neps, sizeof(Episode));
  const double* p = buf + 7;
  for (int e = 0; e < neps; e++) {
    eps[e].nsteps = (int)*p++;
    eps[e].qpos = p;
    p += nq;
    eps[e].qvel = p;
    p += nv;
    eps[e].act = p;
    p += na;
    eps[e].mocap_pos = p;
    p += 3 * nmocap;
    eps[e].mocap_quat = p;
    p += 4 * nmocap;
    eps[e].ctrl = p;
    p += (long)eps[e].nsteps * nu;
  }

  mjData* d = mj_makeData(m);
  int cursor = 0;
  play(m, d, eps, neps, frame_skip, warmup, &cursor);

  double* rates = calloc(repeats, sizeof(double));
  double* cpu_rates = calloc(repeats, sizeof(double));
  long steps = 0;
  double checksum = 0;
  for (int r = 0; r < repeats; r++) {
    cursor = 0;
    double t0 = clock_s(CLOCK_MONOTONIC);
    double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    steps = play(m, d, eps, neps, frame_skip, min_steps, &cursor);
    rates[r] = steps / (clock_s(CLOCK_MONOTONIC) - t0);
    cpu_rates[r] = steps / (clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0);
    if (r == 0) {
      for (int i = 0; i < m->nq; i++) checksum += d->qpos[i];
    }
  }
  printf("{\"version\":\"%s\",\"steps\":%ld,\"rates\":[", mj_versionString(), steps);
  for (int r = 0; r < repeats; r++) printf("%s%.1f", r ? "," : "", rates[r]);
  printf("],\"cpu_rates\":[");
  for (int r = 0; r < repeats; r++) printf("%s%.1f", r ? "," : "", cpu_rates[r]);
  printf("],\"checksum\":%.17g}\n", checksum);

  free(cpu_rates);
  free(rates);
  free(eps);
  free(buf);
  mj_deleteData(d);
  mj_deleteModel(m);
  return 0;
}
