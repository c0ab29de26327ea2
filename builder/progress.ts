import type { BuildEvent } from './build/context.js';

const MB = 1024 * 1024;

function formatSize(bytes: number): string {
  return bytes >= MB ? `${(bytes / MB).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

/**
 * Progress on stderr: one line rewritten in place on a terminal, plain lines otherwise
 * (CI logs). stdout stays free for `--json` and `--stream`.
 */
export function progressReporter(stream: NodeJS.WriteStream = process.stderr): (e: BuildEvent) => void {
  const tty = stream.isTTY === true;
  let done = 0;
  let cached = 0;
  const say = (text: string) => {
    if (tty) stream.write(`\r\x1b[2K${text}`);
    else stream.write(`${text}\n`);
  };
  return (event) => {
    // In a multi-platform build every line says which platform it is about.
    const at = event.platform ? `[${event.platform}] ` : '';
    const e = event;
    const line = (text: string) => say(`${at}${text}`);
    switch (e.phase) {
      case 'closure':
        line(`closure: ${e.paths} store paths, ${formatSize(e.narSize)}`);
        if (tty) stream.write('\n');
        break;
      case 'plan':
        // Each platform of a multi-platform build counts its own layers.
        done = 0;
        cached = 0;
        line(`plan: ${e.layers} layers`);
        if (tty) stream.write('\n');
        break;
      case 'layer-start':
        if (!tty) line(`layer ${e.index + 1}/${e.total} (${e.reason}, ${e.paths} paths, ${formatSize(e.narSize)}): writing`);
        break;
      case 'layer-done':
        done++;
        if (e.origin === 'cached') cached++;
        line(
          tty
            ? `layers: ${done}/${e.total} written${cached > 0 ? ` (${cached} from the cache)` : ''}`
            : `layer ${e.index + 1}/${e.total} (${e.reason}): ${e.digest} ${formatSize(e.size)}${e.origin === 'deferred' ? ' (cached record; made from the store if an output needs its bytes)' : e.origin === 'cached' ? ' (cached)' : ''}`,
        );
        if (tty && done === e.total) stream.write('\n');
        break;
    }
  };
}
