//! supakeys: gives self-hosted Supabase asymmetric JWT signing keys.
//!
//! `main.rs` only parses the command line and calls [`run::main`]. The modules, from the
//! edge inwards: [`cli`] and [`config`] turn flags, environment and env file into a
//! validated [`config::Config`]; [`legacy`] validates the inherited HS256 material;
//! [`state`] loads and reconciles `state.json`; [`render`] and [`kong`] compute every
//! output file in memory; a store writes them: [`store`] to the keys directory,
//! [`kubernetes`] to Secrets through the API server.
#![forbid(unsafe_code)]

pub mod chart;
pub mod check;
pub mod cli;
pub mod clock;
pub mod config;
pub mod doctor;
pub mod envfile;
pub mod error;
pub mod escape;
pub mod http;
pub mod input;
pub mod jwk;
pub mod jwt;
pub mod keys;
pub mod kong;
pub mod kubernetes;
pub mod legacy;
pub mod opaque;
pub mod render;
pub mod run;
pub mod secret;
pub mod state;
pub mod store;
mod yaml;

/// Fills `buf` with the operating system's randomness.
pub fn fill_random(buf: &mut [u8]) -> error::Result<()> {
    getrandom::fill(buf).map_err(|e| error::Error::Randomness {
        source: e.to_string(),
    })
}
