import { formatRetryNotice, login, normaliseRegistry, parseUserPass } from '../../registry-client/index.js';
import { ImgbuildError } from '../errors.js';
import { insecureRegistries, readCaFiles, timeoutOptions, type RegistryFlags } from './registry-flags.js';
import { watchInterrupts } from './interrupt.js';
import { registryArgument } from './arguments.js';
import { printJson } from './print.js';
import type { LoginDocument } from './documents.js';
import { SCHEMA_VERSION } from './schema-version.js';

export interface LoginFlags extends RegistryFlags {
  username?: string;
  passwordStdin?: boolean;
  json?: boolean;
}

/** `docker login`: check the credentials against the registry, then store them in Docker's config. */
export async function runLogin(registry: string, flags: LoginFlags): Promise<void> {
  registryArgument(registry);
  let creds: { username: string; password: string };
  // Two ways of giving credentials at once: which one was meant is not ours to guess.
  if (flags.creds !== undefined && (flags.username !== undefined || flags.passwordStdin)) {
    const other = [flags.username !== undefined && '--username', flags.passwordStdin && '--password-stdin'].filter(Boolean).join(' and ');
    throw new ImgbuildError('usage', `--creds and ${other} both give credentials`, 'give either --creds user:password, or --username <user> --password-stdin');
  }
  if (flags.passwordStdin) {
    if (!flags.username) throw new ImgbuildError('usage', 'login --password-stdin needs --username');
    const password = (await readStdin()).replace(/\r?\n$/, '');
    creds = { username: flags.username, password };
  } else if (flags.creds) {
    creds = parseUserPass(flags.creds);
  } else {
    throw new ImgbuildError('usage', 'login needs --username with --password-stdin, or --creds user:password');
  }
  const ca = await readCaFiles(flags.caFile);
  const interrupt = watchInterrupts();
  let storedIn: string;
  try {
    ({ storedIn } = await login(registry, creds, {
      insecureRegistries: insecureRegistries(flags),
      ca: ca.length > 0 ? ca : undefined,
      timeouts: timeoutOptions(flags),
      onRetry: (n) => void process.stderr.write(`waiting: ${formatRetryNotice(n)}\n`),
      // The interrupt ends the check's connection, answer and backoff waits at once.
      signal: interrupt.signal,
    }));
  } finally {
    interrupt.stop();
  }
  if (flags.json) {
    const doc: LoginDocument = { schemaVersion: SCHEMA_VERSION, registry: normaliseRegistry(registry), username: creds.username, storedIn };
    printJson(doc);
  } else process.stderr.write(`login succeeded for ${registry}; credentials stored in ${storedIn}\n`);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
