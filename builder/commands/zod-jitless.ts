import { config } from 'zod';

// Imported (for its effect) by the CLI before a command that reads only a few documents
// (cli.ts): zod then parses without compiling a parser per object schema, which is worth it for
// thousands of objects, not for a push's manifest, config and index (~14 → ~7 ms of CPU). A
// module of its own so that the bundle loads zod's `config`, not the whole of zod.
config({ jitless: true });
