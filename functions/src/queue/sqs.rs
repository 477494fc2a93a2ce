//! SQS as a work queue (being written).
