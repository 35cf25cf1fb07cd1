// Prints vitest's JSON report as one closing line: "Tests: N passed, N failed".
import { readFileSync } from 'node:fs';

const report = JSON.parse(readFileSync(process.argv[2], 'utf8'));
console.log(`Tests: ${report.numPassedTests} passed, ${report.numFailedTests} failed`);
process.exit(report.success ? 0 : 1);
