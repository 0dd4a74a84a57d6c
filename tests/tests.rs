//! End-to-end tests: they drive the real `supakeys` binary in temporary directories.

mod support;

mod doctor;
mod dotenv_compose;
mod errors;
mod future;
mod hardening;
mod init;
mod kong_template;
mod kubernetes;
mod lifecycle;
mod properties;
mod retirement;
mod stack;
