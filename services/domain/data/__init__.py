"""Package data: the small numbering-plan fixture phonebank ships (Rossvyaz DEF format)."""
