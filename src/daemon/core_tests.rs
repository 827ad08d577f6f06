//! Tests of the core actor: files, logs, deadlines, restarts, failed commits.
