// watchInterrupts (the registry-talking commands' Ctrl-C): the first signal aborts the command's
// signal; work that never looks at it does not hold the process, which exits 130 a moment later.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { repoRoot } from './helpers/paths.js';

const interruptModule = join(repoRoot, 'dist/builder/commands/interrupt.js');

test('a command busy with work that ignores the signal exits 130 after the first SIGINT, saying nothing was written', async () => {
  const script = `
    const { watchInterrupts } = await import(${JSON.stringify(interruptModule)});
    const { signal } = watchInterrupts();
    signal.addEventListener('abort', () => process.stdout.write('aborted\\n'));
    process.stdout.write('ready\\n');
    setInterval(() => {}, 1000); // local work that never looks at the signal
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out === 'ready\n') child.kill('SIGINT');
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 130);
  assert.equal(out, 'ready\naborted\n');
  assert.equal(err, 'interrupted: nothing was written\n');
});
