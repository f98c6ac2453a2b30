//! Rolling-restart and scale-down arithmetic.
