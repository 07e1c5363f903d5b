// Makes the compiled CLI entry executable (npm links it as the `mega` bin).
import { chmodSync, existsSync } from 'node:fs';
const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (existsSync(entry)) chmodSync(entry, 0o755);
