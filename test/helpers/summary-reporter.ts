/**
 * Ends a vitest run with one plain line, `N passed, N failed, N skipped`, that any CI can read.
 * It prints from onFinished, which vitest calls after its own summary.
 */
import type { Reporter } from 'vitest/reporters';

type Task = { type: string; mode?: string; result?: { state?: string }; tasks?: Task[] };

function count(tasks: Task[], counts: { passed: number; failed: number; skipped: number }): void {
  for (const task of tasks) {
    if (task.tasks) count(task.tasks, counts);
    if (task.type !== 'test') continue;
    const state = task.result?.state;
    if (state === 'pass') counts.passed++;
    else if (state === 'fail') counts.failed++;
    else counts.skipped++;
  }
}

export default class SummaryReporter implements Reporter {
  onFinished(files: Task[] = [], errors: unknown[] = []): void {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    count(files, counts);
    // A file that failed to load, or an unhandled error, is a failure with no test to count.
    counts.failed += files.filter((f) => f.result?.state === 'fail' && !f.tasks?.length).length + errors.length;
    process.stdout.write(`\n${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`);
  }
}
