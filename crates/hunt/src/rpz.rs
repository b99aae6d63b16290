//! RPZ (being written on branch hunt-c2).
