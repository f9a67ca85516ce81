//! Parquet encoding on a thread of its own, so that a file's encoding and compression overlap
//! with the backend reading the next rows (on 2 cores, the two halves of an export ran one
//! after the other before).
//!
//! The thread touches no PostgreSQL state: it gets finished Arrow record batches over a bounded
//! channel and owns the staged file. Errors (and panics) come back as text when the file is
//! finished, or at the next batch handed over; the backend raises them as its own errors.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::ArrowWriter;
use std::fs::File;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

/// Batches waiting for the encoder: enough to keep it busy while the backend builds the next,
/// few enough to bound memory (each is one fetch of rows).
const QUEUED_BATCHES: usize = 2;

/// A Parquet file being encoded on its own thread.
pub struct Encoder {
    batches: Option<SyncSender<RecordBatch>>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl Encoder {
    pub fn start(file: File, schema: SchemaRef, options: ArrowWriterOptions) -> Result<Encoder, String> {
        let mut writer = ArrowWriter::try_new_with_options(file, schema, options).map_err(|e| e.to_string())?;
        let (batches, queue) = sync_channel::<RecordBatch>(QUEUED_BATCHES);
        let thread = std::thread::Builder::new()
            .name("kt_export_encoder".into())
            .spawn(move || {
                for batch in queue {
                    writer.write(&batch).map_err(|e| e.to_string())?;
                }
                writer.close().map(|_| ()).map_err(|e| e.to_string())
            })
            .map_err(|e| format!("starting the encoder thread: {e}"))?;
        Ok(Encoder { batches: Some(batches), thread: Some(thread) })
    }

    /// Hands a batch over; waits while the queue is full. Fails if the encoder has stopped
    /// (its error is returned).
    pub fn write(&mut self, batch: RecordBatch) -> Result<(), String> {
        let sender = self.batches.as_ref().expect("an encoder is written only while open");
        if sender.send(batch).is_ok() {
            return Ok(());
        }
        // the thread ended early: it returned an error or panicked
        self.finish().and(Err("the encoder stopped".into()))
    }

    /// Waits until every batch is encoded and the file is complete.
    pub fn finish(&mut self) -> Result<(), String> {
        self.batches.take();
        match self.thread.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(panic)) => Err(panic_text(&panic)),
        }
    }
}

impl Drop for Encoder {
    /// On an error or a cancel the backend unwinds past an open file: the thread is stopped
    /// (its queue closed) and waited for before the staged file is removed.
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    let text = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    format!("the encoder thread failed: {text}")
}
