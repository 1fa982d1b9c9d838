//! A body stream passed through unchanged while its first bytes are kept for the event.
//! When the stream ends, fails or is dropped (the client went away), the bytes seen so
//! far are handed to a callback, exactly once.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use futures_util::Stream;

/// What passed through a [`Tee`].
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Captured {
    /// The first bytes, up to the limit.
    pub bytes: Vec<u8>,
    /// Every byte seen, kept or not.
    pub total: u64,
    /// The stream reached its end without error.
    pub complete: bool,
}

impl Captured {
    /// Whether bytes were seen beyond the limit.
    pub fn truncated(&self) -> bool {
        self.total > self.bytes.len() as u64
    }
}

type Done = Box<dyn FnOnce(Captured) + Send + Sync>;

pub struct Tee<S> {
    inner: S,
    limit: usize,
    /// The declared length: a peer that knows it stops reading at that many bytes,
    /// without waiting for the end of the stream.
    expected: Option<u64>,
    captured: Captured,
    done: Option<Done>,
}

impl<S> Tee<S> {
    pub fn new(
        inner: S,
        limit: usize,
        expected: Option<u64>,
        done: impl FnOnce(Captured) + Send + Sync + 'static,
    ) -> Self {
        Self {
            inner,
            limit,
            expected,
            captured: Captured::default(),
            done: Some(Box::new(done)),
        }
    }

    fn finish(&mut self) {
        if let Some(done) = self.done.take() {
            done(std::mem::take(&mut self.captured));
        }
    }
}

impl<S, E> Stream for Tee<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => {
                let room = self.limit.saturating_sub(self.captured.bytes.len());
                let keep = &chunk[..chunk.len().min(room)];
                self.captured.bytes.extend_from_slice(keep);
                self.captured.total += chunk.len() as u64;
                if self.expected.is_some_and(|len| self.captured.total >= len) {
                    self.captured.complete = true;
                }
            }
            Poll::Ready(None) => {
                self.captured.complete = true;
                self.finish();
            }
            Poll::Ready(Some(Err(_))) => self.finish(),
            Poll::Pending => {}
        }
        polled
    }
}

impl<S> Drop for Tee<S> {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::sync::{Arc, Mutex};

    fn chunks(parts: &[&'static str]) -> impl Stream<Item = Result<Bytes, ()>> + Unpin {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p.as_bytes())))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn passes_everything_through_and_keeps_up_to_the_limit() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let tee = Tee::new(chunks(&["hello ", "world"]), 8, None, move |c| {
            sink.lock().unwrap().push(c)
        });
        let out: Vec<Bytes> = tee.map(Result::unwrap).collect().await;
        assert_eq!(out.concat(), b"hello world");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "the callback runs once, not again on drop");
        assert_eq!(
            (seen[0].bytes.as_slice(), seen[0].total, seen[0].complete),
            (&b"hello wo"[..], 11, true)
        );
        assert!(seen[0].truncated());
    }

    #[tokio::test]
    async fn reaching_the_declared_length_is_complete_even_if_never_polled_to_the_end() {
        let seen = Arc::new(Mutex::new(None));
        let sink = seen.clone();
        let mut tee = Tee::new(chunks(&["ab", "c"]), 100, Some(3), move |c| {
            *sink.lock().unwrap() = Some(c)
        });
        tee.next().await;
        tee.next().await;
        drop(tee);
        assert!(seen.lock().unwrap().take().unwrap().complete);
    }

    #[tokio::test]
    async fn a_dropped_stream_reports_what_it_saw() {
        let seen = Arc::new(Mutex::new(None));
        let sink = seen.clone();
        let mut tee = Tee::new(chunks(&["a", "b", "c"]), 100, None, move |c| {
            *sink.lock().unwrap() = Some(c)
        });
        tee.next().await;
        drop(tee);
        let captured = seen.lock().unwrap().take().unwrap();
        assert_eq!((captured.bytes, captured.complete), (b"a".to_vec(), false));
    }
}
