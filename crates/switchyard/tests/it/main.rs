//! Integration tests: each starts a whole hub with `spawn_app()` and talks to it over HTTP as a
//! user would, with real receivers on 127.0.0.1.

mod brokers;
mod chaos;
mod cli;
mod coalesce;
mod console;
mod console_markup;
mod controls;
mod crash;
mod delivery;
mod dependencies;
mod faults;
mod filters;
mod fixture;
mod full_disk;
mod generated_client;
mod helpers;
mod ingest;
mod input;
mod metrics;
mod openapi;
mod outage;
mod performance;
mod polling;
mod postgres;
mod reconcile;
mod restart;
mod secrets;
mod sellercenter;
mod services;
mod subscriptions;
mod tenancy;
mod traces;
mod transforms;
mod upgrade;
