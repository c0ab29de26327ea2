import type { ResolvedGroup, ResolvedSpec, ResolvedUser } from '../spec/types.js';

/**
 * The account files generated from a spec's `users` and `groups` (resolved: root and nobody
 * included, sorted by id). Written only when the spec has users or groups.
 *
 * - /etc/passwd: `name:x:uid:gid:description:home:shell`, mode 0644.
 * - /etc/group: `name:x:gid:member,member`, mode 0644.
 * - /etc/shadow: every account locked (`!`, no password can log in; aging fields empty), mode
 *   0640. Generated because `x` in /etc/passwd points tools such as su and PAM at it, and a
 *   missing entry is an error for them; containers do not log in with passwords.
 * - /etc/nsswitch.conf: look accounts and hosts up in files (then DNS for hosts), as glibc and Go
 *   programs expect; mode 0644.
 */
export interface GeneratedFile {
  path: string;
  text: string;
  mode: number;
}

export function passwdText(users: readonly ResolvedUser[]): string {
  return users.map((u) => `${u.name}:x:${u.uid}:${u.gid}:${u.description}:${u.home}:${u.shell}\n`).join('');
}

export function groupText(groups: readonly ResolvedGroup[]): string {
  return groups.map((g) => `${g.name}:x:${g.gid}:${g.members.join(',')}\n`).join('');
}

export function shadowText(users: readonly ResolvedUser[]): string {
  return users.map((u) => `${u.name}:!:::::::\n`).join('');
}

export const NSSWITCH_CONF = [
  'passwd:    files',
  'group:     files',
  'shadow:    files',
  'hosts:     files dns',
  'networks:  files',
  'protocols: files',
  'services:  files',
  'ethers:    files',
  'rpc:       files',
  '',
].join('\n');

/** The generated /etc files of a spec, or none when it has no users or groups. */
export function generatedEtcFiles(spec: Pick<ResolvedSpec, 'users' | 'groups'>): GeneratedFile[] {
  if (spec.users.length === 0 && spec.groups.length === 0) return [];
  return [
    { path: '/etc/group', text: groupText(spec.groups), mode: 0o644 },
    { path: '/etc/nsswitch.conf', text: NSSWITCH_CONF, mode: 0o644 },
    { path: '/etc/passwd', text: passwdText(spec.users), mode: 0o644 },
    { path: '/etc/shadow', text: shadowText(spec.users), mode: 0o640 },
  ];
}
