//! Answers read by the byte reader (`record::json`) in front of the SDK's decoder.
//!
//! An interceptor puts [`AnswerReader`] in front of the SDK's decoder for one call. It reads a
//! successful answer with the call's byte reader, leaves what it read in a slot for the
//! caller, and hands the SDK an empty output. An error, or an answer the byte reader declines (an
//! attribute type it does not know, JSON it does not expect), goes to the SDK's decoder as before.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextMut, Error, Output,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, OrchestratorError};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::client::runtime_plugin::RuntimePlugin;
use aws_smithy_runtime_api::client::ser_de::{DeserializeResponse, SharedResponseDeserializer};
use aws_smithy_types::config_bag::{ConfigBag, FrozenLayer, Layer};

/// One call's byte reader: a function of the answer's body (and of what the call knows, a
/// stream's ARN); `None` to decline.
struct Read<A>(Arc<ReadFn<A>>);

type ReadFn<A> = dyn Fn(&[u8]) -> Option<A> + Send + Sync;

impl<A> Clone for Read<A> {
    fn clone(&self) -> Self {
        Read(self.0.clone())
    }
}

impl<A> fmt::Debug for Read<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Read")
    }
}

/// How one operation's answers are read: the SDK's own decoder for what the byte reader declines.
#[derive(Clone)]
pub(super) struct ByteReader {
    /// The SDK's configuration of the operation, which holds its decoder (the config bag's copy
    /// is not `Clone`, so it cannot be taken from there).
    sdk: FrozenLayer,
    /// The output handed to the SDK when the byte reader took the answer.
    empty: fn() -> Output,
}

impl fmt::Debug for ByteReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ByteReader")
    }
}

impl ByteReader {
    /// `operation`: the SDK's operation (`BatchGetItem::new()`), for its decoder.
    pub(super) fn new(operation: &impl RuntimePlugin, empty: fn() -> Output) -> ByteReader {
        ByteReader {
            sdk: operation
                .config()
                .unwrap_or_else(|| Layer::new("operation").freeze()),
            empty,
        }
    }

    /// The interceptor for one call, reading its answer with `read`, and the slot where its answer
    /// will be (`None`: the SDK's output holds it).
    pub(super) fn for_call<A: fmt::Debug + Send + 'static>(
        &self,
        read: impl Fn(&[u8]) -> Option<A> + Send + Sync + 'static,
    ) -> (ReadAnswers<A>, Slot<A>) {
        let slot = Slot(Arc::new(Mutex::new(None)));
        let interceptor = ReadAnswers {
            reader: self.clone(),
            read: Read(Arc::new(read)),
            slot: slot.clone(),
        };
        (interceptor, slot)
    }
}

/// Where one call's answer, read by the byte reader, waits for the caller.
#[derive(Debug)]
pub(super) struct Slot<A>(Arc<Mutex<Option<A>>>);

impl<A> Clone for Slot<A> {
    fn clone(&self) -> Self {
        Slot(self.0.clone())
    }
}

impl<A> Slot<A> {
    pub(super) fn take(&self) -> Option<A> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    fn put(&self, answer: Option<A>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = answer;
    }
}

/// Puts [`AnswerReader`] in front of the SDK's decoder, for one call.
#[derive(Debug)]
pub(super) struct ReadAnswers<A> {
    reader: ByteReader,
    read: Read<A>,
    slot: Slot<A>,
}

impl<A: fmt::Debug + Send + 'static> Intercept for ReadAnswers<A> {
    fn name(&self) -> &'static str {
        "ReadAnswers"
    }

    // Once per call, before its attempts: the decoder the SDK loads for each attempt is then ours.
    fn modify_before_serialization(
        &self,
        _context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let ours = AnswerReader {
            reader: self.reader.clone(),
            read: self.read.clone(),
            slot: self.slot.clone(),
        };
        cfg.interceptor_state()
            .store_put(SharedResponseDeserializer::new(ours));
        Ok(())
    }
}

/// Reads a successful answer with the byte reader into the slot, and gives the SDK an empty
/// output; anything else is the SDK decoder's.
#[derive(Debug)]
struct AnswerReader<A> {
    reader: ByteReader,
    read: Read<A>,
    slot: Slot<A>,
}

impl<A: fmt::Debug + Send + 'static> DeserializeResponse for AnswerReader<A> {
    fn deserialize_nonstreaming_with_config(
        &self,
        response: &HttpResponse,
        cfg: &ConfigBag,
    ) -> Result<Output, OrchestratorError<Error>> {
        let answer = response
            .status()
            .is_success()
            .then(|| response.body().bytes().and_then(|json| (self.read.0)(json)))
            .flatten();
        let ours = answer.is_some();
        // Each attempt's own answer (or none): the last attempt's is the call's.
        self.slot.put(answer);
        if ours {
            return Ok((self.reader.empty)());
        }
        match self.reader.sdk.load::<SharedResponseDeserializer>() {
            Some(sdk) => sdk.deserialize_nonstreaming_with_config(response, cfg),
            None => Err(OrchestratorError::other("the SDK's decoder was not found")),
        }
    }
}
