//! Answers read by the byte reader (`record::json`) in front of the SDK's decoder.
//!
//! An interceptor puts [`AnswerReader`] in front of the SDK's decoder for one call. It reads a
//! successful answer with the operation's byte reader, leaves what it read in a slot for the
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

/// How one operation's answers are read: its byte reader, and the SDK's own decoder for the rest.
pub(super) struct ByteReader<A> {
    /// The SDK's configuration of the operation, which holds its decoder (the config bag's copy
    /// is not `Clone`, so it cannot be taken from there).
    sdk: FrozenLayer,
    read: fn(&[u8]) -> Option<A>,
    /// The output handed to the SDK when `read` took the answer.
    empty: fn() -> Output,
}

// By hand: `A` itself need not be `Clone`.
impl<A> Clone for ByteReader<A> {
    fn clone(&self) -> Self {
        ByteReader {
            sdk: self.sdk.clone(),
            read: self.read,
            empty: self.empty,
        }
    }
}

impl<A> fmt::Debug for ByteReader<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ByteReader")
    }
}

impl<A: fmt::Debug + Send + 'static> ByteReader<A> {
    /// `operation`: the SDK's operation (`BatchGetItem::new()`), for its decoder.
    pub(super) fn new(
        operation: &impl RuntimePlugin,
        read: fn(&[u8]) -> Option<A>,
        empty: fn() -> Output,
    ) -> ByteReader<A> {
        ByteReader {
            sdk: operation
                .config()
                .unwrap_or_else(|| Layer::new("operation").freeze()),
            read,
            empty,
        }
    }

    /// The interceptor for one call, and the slot where its answer will be (`None`: the SDK's
    /// output holds it).
    pub(super) fn for_call(&self) -> (ReadAnswers<A>, Slot<A>) {
        let slot = Slot(Arc::new(Mutex::new(None)));
        let interceptor = ReadAnswers {
            reader: self.clone(),
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
    reader: ByteReader<A>,
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
    reader: ByteReader<A>,
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
            .then(|| response.body().bytes().and_then(self.reader.read))
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
