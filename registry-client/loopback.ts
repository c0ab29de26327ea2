import { isIPv4, isIPv6 } from 'node:net';

/**
 * Whether a registry host (`host[:port]` as references write it) names this machine by itself:
 * `localhost` and `*.localhost` (RFC 6761: always the loopback), an IPv4 address in
 * 127.0.0.0/8, or the IPv6 loopback `[::1]` (in any spelling, e.g. `[0:0::1]`). Names are not
 * resolved: a DNS name that happens to point at 127.0.0.1 is not one (its answer could change).
 *
 * Such a registry may be reached over plain HTTP without naming it insecure (docker treats
 * 127.0.0.0/8 as insecure, go-containerregistry's `name.Registry.Scheme` localhost, 127.0.0.1
 * and ::1): traffic to the loopback never leaves the machine.
 */
export function isLoopbackRegistry(registry: string): boolean {
  const host = hostPart(registry.trim().toLowerCase());
  if (host === undefined) return false;
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIPv4(host)) return host.split('.')[0] === '127';
  if (host.startsWith('[') && host.endsWith(']')) {
    const v6 = host.slice(1, -1);
    return isIPv6(v6) && isIPv6Loopback(v6);
  }
  return false;
}

/** The host of `host[:port]` (an IPv6 address keeps its brackets), or undefined when the port is not a number. */
function hostPart(registry: string): string | undefined {
  if (registry.startsWith('[')) {
    const end = registry.indexOf(']');
    if (end < 0) return undefined;
    const rest = registry.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return undefined;
    return registry.slice(0, end + 1);
  }
  const colon = registry.lastIndexOf(':');
  if (colon < 0) return registry;
  if (!/^\d{1,5}$/.test(registry.slice(colon + 1))) return undefined;
  return registry.slice(0, colon);
}

/** `::1` however it is written (`0:0:0:0:0:0:0:1`, `::0:1`); not IPv4-mapped forms. */
function isIPv6Loopback(addr: string): boolean {
  if (addr.includes('.')) return false;
  const [head = '', tail] = addr.split('::');
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  if (all.length !== 8) return false;
  return all.slice(0, 7).every((g) => /^0{1,4}$/.test(g)) && /^0{0,3}1$/.test(all[7]!);
}
