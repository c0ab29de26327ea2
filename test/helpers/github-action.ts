import { cp, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { runCommand } from './cli.js';

/**
 * A composite action (action.yml) run the way GitHub's runner runs it, for tests: inputs with
 * their defaults, `${{ }}` expressions (the subset: contexts inputs, steps, github, runner, env;
 * literals; == != && || ! and parentheses; success() always() failure() cancelled()), `if:` with
 * the implied success(), each `run:` step under `bash --noprofile --norc -eo pipefail` in the
 * workspace with GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH and GITHUB_STEP_SUMMARY files of its own,
 * and the `uses:` steps this repository's action has: actions/cache/restore and
 * actions/cache/save, against a directory standing in for GitHub's cache service.
 */

export interface ActionRun {
  /** action.yml's directory (github.action_path). */
  actionPath: string;
  inputs: Record<string, string>;
  /** The job's environment (PATH, HOME, ...): what the caller's workflow gives its steps. */
  env: NodeJS.ProcessEnv;
  workspace: string;
  runnerTemp: string;
  /** The directory holding the cache service's entries (one subdirectory per key). */
  cacheService: string;
  github?: Partial<{ sha: string; run_id: string; run_attempt: string; job: string; token: string; repository: string }>;
}

export interface StepResult {
  name: string;
  id?: string;
  conclusion: 'success' | 'failure' | 'skipped';
  /** stdout and stderr of a run step, or what a uses step did. */
  log: string;
  /** The step's GITHUB_OUTPUT file as the step left it. */
  githubOutput: string;
  /** What the step wrote to GITHUB_STEP_SUMMARY. */
  summary: string;
  outputs: Record<string, string>;
}

export interface ActionResult {
  ok: boolean;
  outputs: Record<string, string>;
  steps: StepResult[];
  /** Directories the steps added to GITHUB_PATH. */
  path: string[];
}

interface ActionStep {
  name?: string;
  id?: string;
  if?: string;
  run?: string;
  shell?: string;
  uses?: string;
  with?: Record<string, string>;
  env?: Record<string, string>;
}
interface ActionFile {
  inputs?: Record<string, { default?: string; required?: boolean }>;
  outputs?: Record<string, { value: string }>;
  runs: { using: string; steps: ActionStep[] };
}

type Value = string | number | boolean | null | { [k: string]: Value };

export async function runAction(run: ActionRun): Promise<ActionResult> {
  const action = parse(await readFile(join(run.actionPath, 'action.yml'), 'utf8')) as ActionFile;
  if (action.runs.using !== 'composite') throw new Error(`not a composite action: ${action.runs.using}`);
  const inputs: Record<string, Value> = {};
  for (const [name, def] of Object.entries(action.inputs ?? {})) {
    const given = run.inputs[name];
    if (def.required && (given === undefined || given === '')) throw new Error(`input ${name} is required`);
    inputs[name] = given ?? def.default ?? '';
  }
  for (const name of Object.keys(run.inputs)) if (!(name in inputs)) throw new Error(`action.yml has no input ${name}`);

  const gh = { sha: '0'.repeat(40), run_id: '1', run_attempt: '1', job: 'build', token: 'ghs_test_token', repository: 'acme/app', ...run.github };
  const steps: Record<string, { outputs: Record<string, string>; conclusion: string; outcome: string }> = {};
  const results: StepResult[] = [];
  const addedPath: string[] = [];
  const addedEnv: Record<string, string> = {};
  let failed = false;
  const context = (): Record<string, Value> => ({
    inputs,
    steps,
    github: { ...gh, action_path: run.actionPath, workspace: run.workspace },
    runner: { os: 'Linux', temp: run.runnerTemp, arch: 'X64' },
    env: Object.fromEntries(Object.entries({ ...run.env, ...addedEnv }).filter(([, v]) => v !== undefined)) as Record<string, string>,
  });

  let n = 0;
  for (const step of action.runs.steps) {
    n++;
    const name = step.name ?? step.id ?? `step ${n}`;
    const result: StepResult = { name, ...(step.id ? { id: step.id } : {}), conclusion: 'skipped', log: '', githubOutput: '', summary: '', outputs: {} };
    results.push(result);
    const condition = step.if ?? 'success()';
    const wanted = /\b(success|always|failure|cancelled)\(/.test(condition) ? condition : `success() && (${stripBraces(condition)})`;
    if (!truthy(evaluate(stripBraces(wanted), context(), failed))) {
      if (step.id) steps[step.id] = { outputs: {}, conclusion: 'skipped', outcome: 'skipped' };
      continue;
    }
    const interp = (s: string) => interpolate(s, context(), failed);
    const stepEnv = Object.fromEntries(Object.entries(step.env ?? {}).map(([k, v]) => [k, interp(String(v))]));
    try {
      if (step.run !== undefined) {
        if (step.shell !== 'bash') throw new Error(`${name}: only shell: bash is simulated`);
        const dir = join(run.runnerTemp, '_runner_file_commands', String(n));
        await mkdir(dir, { recursive: true });
        const files = { GITHUB_OUTPUT: join(dir, 'output'), GITHUB_ENV: join(dir, 'env'), GITHUB_PATH: join(dir, 'path'), GITHUB_STEP_SUMMARY: join(dir, 'summary') };
        for (const f of Object.values(files)) await writeFile(f, '');
        const script = join(dir, 'script.sh');
        await writeFile(script, interp(step.run));
        const env: NodeJS.ProcessEnv = {
          ...run.env,
          ...addedEnv,
          PATH: [...addedPath, run.env.PATH ?? ''].join(':'),
          CI: 'true',
          GITHUB_ACTIONS: 'true',
          GITHUB_WORKSPACE: run.workspace,
          GITHUB_ACTION_PATH: run.actionPath,
          GITHUB_SHA: gh.sha,
          GITHUB_RUN_ID: gh.run_id,
          GITHUB_RUN_ATTEMPT: gh.run_attempt,
          GITHUB_JOB: gh.job,
          GITHUB_REPOSITORY: gh.repository,
          RUNNER_OS: 'Linux',
          RUNNER_TEMP: run.runnerTemp,
          ...files,
          ...stepEnv,
        };
        const r = await runCommand('bash', ['--noprofile', '--norc', '-eo', 'pipefail', script], { cwd: run.workspace, env });
        result.log = r.stdout.toString() + r.stderr;
        result.githubOutput = await readFile(files.GITHUB_OUTPUT, 'utf8');
        result.outputs = parseFileCommand(result.githubOutput);
        result.summary = await readFile(files.GITHUB_STEP_SUMMARY, 'utf8');
        Object.assign(addedEnv, parseFileCommand(await readFile(files.GITHUB_ENV, 'utf8')));
        addedPath.unshift(...(await readFile(files.GITHUB_PATH, 'utf8')).split('\n').filter(Boolean).reverse());
        result.conclusion = r.code === 0 ? 'success' : 'failure';
      } else if (step.uses) {
        const args = Object.fromEntries(Object.entries(step.with ?? {}).map(([k, v]) => [k, interp(String(v))]));
        const done = await usesStep(step.uses, args, run.cacheService);
        result.log = done.log;
        result.outputs = done.outputs;
        result.conclusion = 'success';
      } else {
        throw new Error(`${name}: neither run nor uses`);
      }
    } catch (e) {
      result.log += `\n${(e as Error).stack ?? e}`;
      result.conclusion = 'failure';
    }
    if (result.conclusion === 'failure') failed = true;
    if (step.id) steps[step.id] = { outputs: result.outputs, conclusion: result.conclusion, outcome: result.conclusion };
  }

  const outputs: Record<string, string> = {};
  for (const [name, def] of Object.entries(action.outputs ?? {})) outputs[name] = interpolate(def.value, context(), failed);
  return { ok: !failed, outputs, steps: results, path: addedPath };
}

/** The two steps of actions/cache this action uses, on a directory per key. */
async function usesStep(uses: string, args: Record<string, string>, service: string): Promise<{ log: string; outputs: Record<string, string> }> {
  const [action] = uses.split('@');
  const entries = async () => {
    await mkdir(service, { recursive: true });
    const out: { key: string; saved: number }[] = [];
    for (const key of await readdir(service)) out.push({ key: decodeURIComponent(key), saved: (await stat(join(service, key))).mtimeMs });
    return out.sort((a, b) => b.saved - a.saved);
  };
  const dirOf = (key: string) => join(service, encodeURIComponent(key));
  if (action === 'actions/cache/restore') {
    const { path, key } = args;
    if (!path || !key) throw new Error('actions/cache/restore needs path and key');
    const all = await entries();
    let hit = all.find((e) => e.key === key);
    if (!hit) {
      for (const prefix of (args['restore-keys'] ?? '').split('\n').map((s) => s.trim()).filter(Boolean)) {
        hit = all.find((e) => e.key.startsWith(prefix));
        if (hit) break;
      }
    }
    if (!hit) return { log: `Cache not found for input keys: ${key}`, outputs: { 'cache-hit': 'false', 'cache-primary-key': key } };
    await mkdir(path, { recursive: true });
    await cp(dirOf(hit.key), path, { recursive: true });
    return { log: `Cache restored from key: ${hit.key}`, outputs: { 'cache-hit': String(hit.key === key), 'cache-primary-key': key, 'cache-matched-key': hit.key } };
  }
  if (action === 'actions/cache/save') {
    const { path, key } = args;
    if (!path || !key) throw new Error('actions/cache/save needs path and key');
    if ((await entries()).some((e) => e.key === key)) return { log: `Failed to save: Unable to reserve cache with key ${key}, another job may be creating this cache.`, outputs: {} };
    try {
      await stat(path);
    } catch {
      return { log: 'Path Validation Error: Path(s) specified in the action for caching do(es) not exist, hence no cache is being saved.', outputs: {} };
    }
    await rm(dirOf(key), { recursive: true, force: true });
    await cp(path, dirOf(key), { recursive: true });
    return { log: `Cache saved with key: ${key}`, outputs: {} };
  }
  throw new Error(`uses: ${uses} is not simulated`);
}

/** `name=value` lines and `name<<DELIMITER` blocks, as GitHub reads GITHUB_OUTPUT and GITHUB_ENV. */
export function parseFileCommand(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    const heredoc = /^([^=]+?)<<(.+)$/.exec(line);
    const eq = line.indexOf('=');
    if (heredoc && (eq < 0 || eq > line.indexOf('<<'))) {
      const [, name, delimiter] = heredoc;
      const value: string[] = [];
      for (i++; i < lines.length && lines[i] !== delimiter; i++) value.push(lines[i]!);
      if (i >= lines.length) throw new Error(`no closing ${delimiter} for ${name}`);
      out[name!] = value.join('\n');
    } else if (eq > 0) {
      out[line.slice(0, eq)] = line.slice(eq + 1);
    } else {
      throw new Error(`not a file command line: ${line}`);
    }
  }
  return out;
}

function stripBraces(s: string): string {
  const m = /^\s*\$\{\{([\s\S]*)\}\}\s*$/.exec(s);
  return m ? m[1]! : s;
}

/** A string with `${{ expr }}` parts replaced by their values. */
export function interpolate(s: string, ctx: Record<string, Value>, failed = false): string {
  return s.replace(/\$\{\{([\s\S]*?)\}\}/g, (_, expr: string) => toText(evaluate(expr, ctx, failed)));
}

function toText(v: Value): string {
  if (v === null) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function truthy(v: Value): boolean {
  return !(v === null || v === false || v === 0 || v === '' || (typeof v === 'number' && Number.isNaN(v)));
}

function toNumber(v: Value): number {
  if (v === null) return 0;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return v.trim() === '' ? 0 : Number(v);
  return NaN;
}

function equal(a: Value, b: Value): boolean {
  if (typeof a === 'string' && typeof b === 'string') return a.toLowerCase() === b.toLowerCase();
  if (typeof a === typeof b && (a === null || typeof a !== 'object')) return a === b;
  if (typeof a === 'object' || typeof b === 'object') return a === b;
  return toNumber(a) === toNumber(b);
}

/** Evaluate one GitHub Actions expression (the subset described above). */
export function evaluate(source: string, ctx: Record<string, Value>, failed = false): Value {
  const tokens = source.match(/\s*('(?:[^']|'')*'|&&|\|\||==|!=|[!().[\]]|[A-Za-z_][A-Za-z0-9_-]*|-?\d+(?:\.\d+)?|\S)/g)?.map((t) => t.trim()) ?? [];
  let i = 0;
  const peek = () => tokens[i];
  const take = (want?: string) => {
    const t = tokens[i++];
    if (want !== undefined && t !== want) throw new Error(`expression ${source}: expected ${want}, got ${t ?? 'the end'}`);
    return t!;
  };
  const or = (): Value => {
    let v = and();
    while (peek() === '||') {
      take();
      const r = and();
      v = truthy(v) ? v : r;
    }
    return v;
  };
  const and = (): Value => {
    let v = eq();
    while (peek() === '&&') {
      take();
      const r = eq();
      v = truthy(v) ? r : v;
    }
    return v;
  };
  const eq = (): Value => {
    const v = unary();
    if (peek() === '==' || peek() === '!=') {
      const op = take();
      const r = unary();
      return op === '==' ? equal(v, r) : !equal(v, r);
    }
    return v;
  };
  const unary = (): Value => {
    if (peek() === '!') {
      take();
      return !truthy(unary());
    }
    return primary();
  };
  const primary = (): Value => {
    const t = take();
    if (t === '(') {
      const v = or();
      take(')');
      return v;
    }
    if (t.startsWith("'")) return t.slice(1, -1).replace(/''/g, "'");
    if (/^-?\d/.test(t)) return Number(t);
    if (t === 'true' || t === 'false') return t === 'true';
    if (t === 'null') return null;
    if (!/^[A-Za-z_]/.test(t)) throw new Error(`expression ${source}: unexpected ${t}`);
    if (peek() === '(') {
      take('(');
      take(')');
      switch (t) {
        case 'success':
          return !failed;
        case 'always':
          return true;
        case 'failure':
          return failed;
        case 'cancelled':
          return false;
        default:
          throw new Error(`expression ${source}: function ${t}() is not simulated`);
      }
    }
    let v: Value = t in ctx ? ctx[t]! : null;
    if (!(t in ctx)) throw new Error(`expression ${source}: unknown context ${t}`);
    while (peek() === '.' || peek() === '[') {
      if (take() === '.') {
        const key = take();
        v = v !== null && typeof v === 'object' ? (v[key] ?? null) : null;
      } else {
        const key = toText(or());
        take(']');
        v = v !== null && typeof v === 'object' ? (v[key] ?? null) : null;
      }
    }
    return v;
  };
  const v = or();
  if (i !== tokens.length) throw new Error(`expression ${source}: unexpected ${tokens[i]}`);
  return v;
}
