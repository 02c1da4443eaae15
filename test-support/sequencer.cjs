const Sequencer = require('@jest/test-sequencer').default;

/** The connection-budget check reads the peak seen during the whole run, so it goes last. */
class BudgetLastSequencer extends Sequencer {
  sort(tests) {
    const sorted = super.sort(tests);
    const isBudget = (test) => test.path.endsWith('connection-budget.test.ts');
    return [...sorted.filter((t) => !isBudget(t)), ...sorted.filter(isBudget)];
  }
}

module.exports = BudgetLastSequencer;
