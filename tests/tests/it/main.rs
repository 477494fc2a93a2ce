//! The acceptance tests, one binary (one link) for all of them. `api` holds
//! the end-to-end API suites whose outcome depends on the store, which
//! `scripts/test` runs on the embedded store and again on DynamoDB Local
//! (`KORALA_TEST_STORE=dynamodb`, filter `api::`); `requests`, the refusals
//! that come before the store matters, runs once. The rest each name the
//! engines they need: the store and queue conformance suites per adapter,
//! DynamoDB's costs, stream and faults, the messaging adapters on moto,
//! redelivery, our signatures checked by PyPI's standardwebhooks, and the
//! OCR adapter reading specimen documents with Tesseract.

mod api;
mod aws_messaging;
mod document_storage;
mod dynamodb_costs;
mod dynamodb_stream;
mod faults_dynamodb;
mod faults_redelivery;
mod ocr_tesseract;
mod queue_sqlite;
mod queue_sqs;
mod requests;
mod store_dynamodb;
mod store_sqlite;
mod webhook_signatures;
mod world;
