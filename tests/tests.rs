//! End-to-end tests: they drive the real `supakeys` binary in temporary directories.

mod support;

mod doctor;
mod errors;
mod hardening;
mod init;
mod kong_template;
mod kubernetes;
mod lifecycle;
mod properties;
mod stack;
