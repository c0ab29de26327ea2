// Preloaded into a child (`node --import <this> …`): at exit, writes the process's peak resident
// set size in bytes (getrusage's ru_maxrss, which Node gives in KiB) to $IMGBUILD_TEST_RSS_FILE.
// The kernel keeps the peak, so nothing has to be sampled while the child runs.
import { writeFileSync } from 'node:fs';

const file = process.env.IMGBUILD_TEST_RSS_FILE;
if (file) {
  process.on('exit', () => {
    writeFileSync(file, String(process.resourceUsage().maxRSS * 1024));
  });
}
