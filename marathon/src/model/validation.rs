//! Validation of app definitions and of the whole root group, with
//! Marathon's paths and messages.
