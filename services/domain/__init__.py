"""Pure rules, no I/O: calling hours, retry policy, regions, numbering plan, wire records,
lease types."""
