//! Progress arithmetic.
