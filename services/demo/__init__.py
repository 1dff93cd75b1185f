"""`phonebank demo`: the whole pipeline on the local stack, with simulated volunteers."""
