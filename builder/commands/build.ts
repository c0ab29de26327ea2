import { buildImage } from '../build.js';
import { defaultOutputPath, streamOutput, writeOutput, type OutputFormat } from '../outputs.js';
import { progressReporter } from '../progress.js';
import { loadSpecAndStore, printJson, readPrevious, type StoreFlags } from './common.js';

interface BuildFlags extends StoreFlags {
  output?: string;
  format: OutputFormat;
  stream?: boolean;
  json?: boolean;
  previous?: string;
}

export async function runBuild(specFile: string, flags: BuildFlags): Promise<void> {
  const abort = new AbortController();
  // First Ctrl-C aborts cleanly (temp files removed); a second one exits at once.
  const onSigint = () => {
    if (abort.signal.aborted) process.exit(130);
    abort.abort();
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  try {
    const { spec, store } = await loadSpecAndStore(specFile, flags);
    const previous = await readPrevious(flags.previous);
    const result = await buildImage(spec, { store, previous, signal: abort.signal, onEvent: progressReporter() });
    const { image, blobs } = result;
    abort.signal.throwIfAborted();
    let output: string | undefined;
    if (flags.stream) {
      await streamOutput(image, blobs, process.stdout);
    } else {
      output = flags.output ?? defaultOutputPath(spec.name, flags.format);
      await writeOutput(image, blobs, flags.format, output);
    }
    abort.signal.throwIfAborted();
    const summary = {
      name: image.name,
      tag: image.tag,
      manifestDigest: image.manifestDescriptor.digest,
      configDigest: image.configDescriptor.digest,
      format: flags.stream ? 'docker-archive' : flags.format,
      output: output ?? '-',
      layers: image.layers.map((l) => ({
        digest: l.digest,
        diffId: l.diffId,
        size: l.size,
        mediaType: l.mediaType,
        reason: l.reason,
        storePaths: l.storePaths,
      })),
    };
    if (flags.json && !flags.stream) {
      printJson(summary);
    } else {
      const say = (s: string) => (flags.stream ? process.stderr : process.stdout).write(`${s}\n`);
      say(`${image.manifestDescriptor.digest}`);
      if (output) {
        say(`wrote ${flags.format} ${output} (${image.name}:${image.tag}, ${image.layers.length} layers)`);
        say(`look inside: imgbuild inspect ${output}${flags.format === 'oci' ? `   or   skopeo inspect oci:${output}` : ''}`);
      }
    }
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
}
