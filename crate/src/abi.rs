//! The WebAssembly exports: a JSON-in/JSON-out wrapper around [`Core`].
//!
//! This module holds every `unsafe` line of the crate. The host writes a
//! request into a buffer from `alloc`, `call` takes ownership of it and
//! returns a buffer the host must release with `dealloc`. Each export only
//! decodes, calls a typed method and encodes. `docs/boundary.md` describes
//! the messages.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::protocol::{CommandId, HttpResponse, LogLine, Message, Outcome, Step, TransportFailure, UnixMillis};
use crate::{Core, Limits, ABI_VERSION};

/// The core of this module instance. wasm32-unknown-unknown runs one
/// thread, so the lock is never contended; it only makes the static safe.
static CORE: Mutex<Option<Core>> = Mutex::new(None);

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    Configure {
        config: Value,
        #[serde(default)]
        limits: Limits,
    },
    Start {
        now_ms: UnixMillis,
        #[serde(flatten)]
        message: Message,
    },
    Resume {
        command: CommandId,
        now_ms: UnixMillis,
        #[serde(default)]
        response: Option<HttpResponse>,
        #[serde(default)]
        failure: Option<TransportFailure>,
    },
    Cancel {
        command: CommandId,
    },
}

#[derive(Deserialize)]
struct Envelope {
    abi: u32,
}

/// The results of each operation. Typed structs rather than `json!` keep
/// the generic JSON-value serializer, float printing included, out of the module.
#[derive(Serialize)]
#[serde(untagged)]
enum Answer {
    Configured {
        base_command: String,
        problems: Vec<String>,
        log: Vec<LogLine>,
    },
    Started {
        command: Option<CommandId>,
        step: Step,
    },
    Resumed {
        step: Step,
    },
    Cancelled {},
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum Output {
    Ok(Answer),
    Error { kind: &'static str, message: String },
}

#[no_mangle]
pub extern "C" fn abi_version() -> u32 {
    ABI_VERSION
}

/// Allocates `len` bytes for the host. Returns 0 when `len` is 0 or too large.
#[no_mangle]
pub extern "C" fn alloc(len: u32) -> u32 {
    if len == 0 {
        return 0;
    }
    let mut buffer = Vec::<u8>::new();
    if buffer.try_reserve_exact(len as usize).is_err() {
        return 0;
    }
    buffer.resize(len as usize, 0);
    let pointer = buffer.as_mut_ptr();
    std::mem::forget(buffer);
    pointer as u32
}

/// Frees a buffer from `alloc` or from `call`'s result.
///
/// # Safety
/// `ptr` and `len` must describe a buffer this module handed out and that
/// was not freed yet.
#[no_mangle]
pub unsafe extern "C" fn dealloc(ptr: u32, len: u32) {
    if ptr == 0 || len == 0 {
        return;
    }
    // SAFETY: the caller guarantees that (ptr, len) came from `alloc` or
    // `into_packed`, both of which leak a Vec<u8> whose length and capacity are `len`.
    drop(unsafe { Vec::from_raw_parts(ptr as *mut u8, len as usize, len as usize) });
}

/// Runs one request. Takes ownership of the input buffer and returns
/// `(out_ptr << 32) | out_len` of the JSON response.
///
/// # Safety
/// `ptr` and `len` must describe a buffer from `alloc` that holds the request.
#[no_mangle]
pub unsafe extern "C" fn call(ptr: u32, len: u32) -> u64 {
    let input = if ptr == 0 || len == 0 {
        Vec::new()
    } else {
        // SAFETY: the caller guarantees that (ptr, len) came from `alloc`.
        unsafe { Vec::from_raw_parts(ptr as *mut u8, len as usize, len as usize) }
    };
    let output = handle(&input);
    let bytes = serde_json::to_vec(&output).unwrap_or_else(|_| {
        br#"{"error":{"kind":"internal","message":"the response could not be serialized"}}"#.to_vec()
    });
    into_packed(bytes)
}

fn into_packed(bytes: Vec<u8>) -> u64 {
    let mut bytes = bytes.into_boxed_slice().into_vec();
    let len = bytes.len() as u64;
    let pointer = bytes.as_mut_ptr() as u64;
    std::mem::forget(bytes);
    (pointer << 32) | len
}

fn failure(kind: &'static str, message: impl std::fmt::Display) -> Output {
    Output::Error {
        kind,
        message: message.to_string(),
    }
}

fn handle(input: &[u8]) -> Output {
    let envelope: Envelope = match serde_json::from_slice(input) {
        Ok(envelope) => envelope,
        Err(error) => return failure("invalid_request", format_args!("the request is not valid JSON with an `abi` field: {error}")),
    };
    if envelope.abi != ABI_VERSION {
        return failure("abi_mismatch", format_args!("the host speaks ABI version {} but this module speaks {ABI_VERSION}", envelope.abi));
    }
    let request: Request = match serde_json::from_slice(input) {
        Ok(request) => request,
        Err(error) => return failure("invalid_request", error),
    };

    let Ok(mut guard) = CORE.lock() else {
        return failure("internal", "the core's state is unavailable");
    };
    let core = guard.get_or_insert_with(Core::new);
    dispatch(core, request)
}

fn dispatch(core: &mut Core, request: Request) -> Output {
    let result = match request {
        Request::Configure { config, limits } => {
            core.set_limits(limits);
            let configured = core.configure(&config);
            return Output::Ok(Answer::Configured {
                base_command: configured.base_command,
                problems: configured.problems,
                log: configured.log,
            });
        }
        Request::Start { now_ms, message } => core
            .start(now_ms, &message)
            .map(|(command, step)| Answer::Started { command, step }),
        Request::Resume { command, now_ms, response, failure: transport } => {
            let outcome = match (response, transport) {
                (Some(response), None) => Outcome::Response(response),
                (None, Some(transport)) => Outcome::Failure(transport),
                _ => return failure("invalid_request", "resume needs exactly one of `response` and `failure`"),
            };
            core.resume(command, now_ms, outcome).map(|step| Answer::Resumed { step })
        }
        Request::Cancel { command } => {
            core.cancel(command);
            Ok(Answer::Cancelled {})
        }
    };
    match result {
        Ok(answer) => Output::Ok(answer),
        Err(error) => failure("invalid_request", error),
    }
}
