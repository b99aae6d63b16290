//! What is counted per target and direction in each 1-second bucket (STUB).
