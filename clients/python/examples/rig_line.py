"""A toy robot rig in Python: the reference loop of docs/rig.md, on a system simple enough to read at a glance.

    python3 clients/python/examples/rig_line.py --url ws://127.0.0.1:8787/ws --token TOKEN --episodes 20 [--json]

The "robot" is a point on a line: proprio is its signed distance e to a target, an action a in [-0.2, 0.2] moves
it by a, the success sensor fires within 0.1 of the target, and an episode gives up after 30 observations. A
camera `front` sends an 8x8 raw frame whose brightness says how close the point is. Late actions are held and
reported, as the protocol asks.
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from progress_bridge import Camera, RigClient  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", default=os.environ.get("PBRIDGE_TOKEN"))
    ap.add_argument("--name", default="py-line")
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    summary = {"episodes": 0, "steps": 0, "successes": 0, "late": 0, "lengths": []}
    with RigClient(
        args.url,
        args.token,
        name=args.name,
        instruction="move to the target",
        cameras=[Camera("front", 8, 8, "raw")],
        proprio_names=["error"],
        action_low=[-0.2],
        action_high=[0.2],
        rate_hz=20,
        success_sensor=True,
    ) as rig:
        for _ in range(args.episodes):
            e = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.0)
            held = False
            success = False
            for k in range(30):
                success = abs(e) < 0.1
                frame = np.full((8, 8, 3), int(255 * max(0.0, 1 - abs(e))), dtype=np.uint8)
                reply = rig.step(
                    {"front": frame}, [e], time=k / 20, success=success, held=held, privileged=max(0.0, 1 - abs(e))
                )
                summary["steps"] += 1
                if reply.ended:
                    break
                held = reply.late
                if reply.late:
                    summary["late"] += 1
                else:
                    e = float(np.clip(e + reply.action[0], -1.5, 1.5))
            summary["lengths"].append(k + 1)
            summary["successes"] += int(success)
            summary["episodes"] += 1
            rig.reset("episode_end" if success else "time_limit")
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{summary['episodes']} episodes, {summary['successes']} successful, {summary['steps']} steps, "
              f"{summary['late']} late actions held")


if __name__ == "__main__":
    main()
