import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tool } from './cli.js';

let runs = 0;

/**
 * Unpack `<layout>:<tag>` with umoci (which checks every digest and diff_id) into a new bundle
 * under `workDir`; resolves to the bundle's path (its rootfs is `<bundle>/rootfs`, the runtime
 * config umoci made from the image config is `<bundle>/config.json`).
 */
export async function unpackImage(layout: string, tag: string, workDir: string): Promise<string> {
  const bundle = join(workDir, `bundle-${process.pid}-${++runs}`);
  await tool('umoci', ['unpack', '--image', `${layout}:${tag}`, bundle]);
  return bundle;
}

/**
 * Unpack `<layout>:<tag>` with umoci into a bundle under `workDir`, and run it with runc without
 * a terminal; resolves to what the container printed.
 */
export async function runImage(layout: string, tag: string, workDir: string): Promise<string> {
  const bundle = await unpackImage(layout, tag, workDir);
  const configPath = join(bundle, 'config.json');
  const config = JSON.parse(await readFile(configPath, 'utf8'));
  config.process.terminal = false;
  await writeFile(configPath, JSON.stringify(config));
  return tool('runc', ['run', '--bundle', bundle, `imgbuild-test-${process.pid}-${runs}`]);
}
