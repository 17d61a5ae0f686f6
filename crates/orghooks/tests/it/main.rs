//! End-to-end tests of the real `orghooks` binary: `serve` as a child
//! process, admin commands as separate processes on the same data folder.

mod cli;
mod cluster;
mod crash;
mod listen;
mod process;
mod receiver;
mod tour;
