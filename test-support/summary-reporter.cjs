/**
 * Keeps the run's counts for global-teardown.mjs, which prints them as the
 * run's last line in the plain "N passed, N failed" form that CI reads.
 */
class SummaryReporter {
  onRunComplete(_contexts, results) {
    globalThis.__aifTestSummary = {
      passed: results.numPassedTests,
      failed: results.numFailedTests + results.numRuntimeErrorTestSuites,
      skipped: results.numPendingTests + results.numTodoTests,
    };
  }
}

module.exports = SummaryReporter;
