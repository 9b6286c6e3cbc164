/**
 * Who may connect: tokens compared in constant time, loopback detection, and the Origin/Host check that keeps
 * web pages on other sites (and DNS-rebinding tricks) from reading or driving a bridge on this machine.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

/** A fresh token: 24 random bytes, base64url (32 characters, URL-safe for `?token=`). */
export function generateToken(): string {
  return randomBytes(24).toString('base64url');
}

/**
 * Constant-time token comparison. Both sides are hashed first so the comparison time depends on neither the
 * secret's length nor the position of the first differing byte.
 */
export function tokensEqual(expected: string, given: string): boolean {
  const a = createHash('sha256').update(expected, 'utf8').digest();
  const b = createHash('sha256').update(given, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** True for 127.0.0.0/8, ::1, IPv4-mapped loopback and the name `localhost`. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/** Host name of a Host header or URL authority, without port or IPv6 brackets. */
export function hostnameOf(authority: string): string {
  if (authority.startsWith('[')) return authority.slice(1, authority.indexOf(']'));
  const colon = authority.lastIndexOf(':');
  return colon >= 0 && authority.indexOf(':') === colon ? authority.slice(0, colon) : authority;
}

/**
 * Browser check at the WebSocket upgrade. Non-browser clients send no Origin and pass (they need tokens where it
 * matters). A browser page must come from this server (Origin matches the Host it connected to) or from an
 * origin the operator allowed; on a loopback server the Host must also be a loopback name, which defeats DNS
 * rebinding (a foreign name resolving to 127.0.0.1 is same-origin with itself but not a loopback name).
 */
export function originAllowed(
  origin: string | undefined,
  host: string | undefined,
  serverIsLoopback: boolean,
  allowed: readonly string[],
): { ok: true } | { ok: false; reason: string } {
  if (origin === undefined) return { ok: true };
  if (allowed.includes('*') || allowed.includes(origin)) return { ok: true };
  let originHost: string;
  try {
    originHost = new URL(origin).host;
  } catch {
    return { ok: false, reason: `malformed Origin "${origin}"` };
  }
  if (!host || originHost !== host) {
    return {
      ok: false,
      reason: `Origin ${origin} is not this server (${host ?? 'no Host header'}); pass --allow-origin to permit it`,
    };
  }
  if (serverIsLoopback && !isLoopback(hostnameOf(host))) {
    return { ok: false, reason: `Host ${host} is not a loopback name on a loopback-only server` };
  }
  return { ok: true };
}
