//! Reading Gatehouse's answers: one JSON body, or a stream of server-sent
//! events whose `data` is one JSON-RPC message each.

use futures::StreamExt;
use serde_json::Value;

/// Passes every message of `response` to `each`; returns how many.
pub async fn relay(
    response: reqwest::Response,
    mut each: impl FnMut(Value),
) -> Result<usize, String> {
    let is_stream = response
        .headers()
        .get("content-type")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|t| t.starts_with("text/event-stream"));
    if !is_stream {
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        if bytes.is_empty() {
            return Ok(0);
        }
        return match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Array(all)) => {
                let n = all.len();
                all.into_iter().for_each(&mut each);
                Ok(n)
            }
            Ok(one) if one.get("jsonrpc").is_some() => {
                each(one);
                Ok(1)
            }
            _ => Ok(0),
        };
    }
    let mut events = Events::default();
    let mut body = response.bytes_stream();
    let mut n = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        for data in events.push(&chunk) {
            if let Ok(msg) = serde_json::from_str::<Value>(&data) {
                each(msg);
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Splits a byte stream into server-sent events; yields each event's data.
/// Bytes are kept until an event is whole, so a character split across
/// chunks stays whole; carriage returns are dropped (JSON escapes its own).
#[derive(Default)]
pub struct Events {
    buffer: Vec<u8>,
}

impl Events {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.buffer.extend(chunk.iter().filter(|b| **b != b'\r'));
        let mut out = Vec::new();
        while let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
            let bytes: Vec<u8> = self.buffer.drain(..end + 2).collect();
            let event = String::from_utf8_lossy(&bytes);
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if !data.is_empty() {
                out.push(data.join("\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks() {
        let mut e = Events::default();
        assert!(e.push(b"id: 1\ndata: {\"a\"").is_empty());
        assert_eq!(
            e.push(b":1}\n\n: comment\n\ndata: 2\r\n\r\n"),
            vec!["{\"a\":1}", "2"]
        );
        let snow = "data: \u{2603}\n\n".as_bytes();
        assert!(e.push(&snow[..7]).is_empty(), "half a character waits");
        assert_eq!(e.push(&snow[7..]), vec!["\u{2603}"]);
    }
}
