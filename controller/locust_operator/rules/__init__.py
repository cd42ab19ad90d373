"""Pure decisions: observation, pod health, phase, conditions, the verdict, parsing."""
