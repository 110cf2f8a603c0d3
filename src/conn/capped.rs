//! The agent's messages (`taskscope.agent.v1`) decoded within the viewer's
//! caps ([`crate::model::caps`]): what is over a cap is skipped where it is
//! read, never allocated, and counted. prost's own decoding would first
//! build everything a message holds (an empty frame is 2 bytes on the
//! wire and 56 in memory: a message within the size limit could still
//! take gigabytes), so these decoders walk the wire format themselves and
//! fill the generated types with what is kept.

use crate::model::caps::{self, Capped};
use prost::bytes::{Buf, BufMut};
use prost::encoding::{WireType, decode_key, decode_varint};
use taskscope_proto as proto;

type Result<T> = std::result::Result<T, Malformed>;

/// A message that does not follow protobuf's wire format.
#[derive(Debug, thiserror::Error)]
pub enum Malformed {
    #[error("a field runs past its message")]
    Truncated,
    #[error("a field uses protobuf's deprecated groups")]
    Group,
    #[error(transparent)]
    Wire(#[from] prost::DecodeError),
}

/// A field as the wire gives it.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// Fixed-width values: no field of the contract is one.
    Other,
}

/// Reads one message's fields in wire order.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        Some(self.field())
    }
}

impl<'a> Fields<'a> {
    fn field(&mut self) -> Result<(u32, Value<'a>)> {
        let (tag, wire) = decode_key(&mut self.0)?;
        let value = match wire {
            WireType::Varint => Value::Varint(decode_varint(&mut self.0)?),
            WireType::LengthDelimited => {
                let len = decode_varint(&mut self.0)?;
                let len = usize::try_from(len)
                    .ok()
                    .filter(|l| *l <= self.0.len())
                    .ok_or(Malformed::Truncated)?;
                let (b, rest) = self.0.split_at(len);
                self.0 = rest;
                Value::Bytes(b)
            }
            WireType::SixtyFourBit => self.skip(8)?,
            WireType::ThirtyTwoBit => self.skip(4)?,
            WireType::StartGroup | WireType::EndGroup => {
                return Err(Malformed::Group);
            }
        };
        Ok((tag, value))
    }

    fn skip(&mut self, n: usize) -> Result<Value<'a>> {
        if self.0.len() < n {
            return Err(Malformed::Truncated);
        }
        self.0.advance(n);
        Ok(Value::Other)
    }
}

fn varint(v: &Value<'_>) -> u64 {
    match v {
        Value::Varint(n) => *n,
        _ => 0,
    }
}

/// A length-delimited field's bytes (anything else reads as empty).
fn bytes<'a>(v: &Value<'a>) -> &'a [u8] {
    match v {
        Value::Bytes(b) => b,
        _ => &[],
    }
}

/// A string cut to `max` bytes (invalid UTF-8 replaced), counting a cut.
fn text(v: &Value<'_>, max: usize, cut: &mut Capped) -> String {
    let b = bytes(v);
    if b.len() > max {
        cut.strings += 1;
        let mut s = String::from_utf8_lossy(&b[..max]).into_owned();
        s.push('…');
        s
    } else {
        String::from_utf8_lossy(b).into_owned()
    }
}

/// Appends a repeated `uint64` (packed or not) to `to`, at most `max`
/// values in all; returns how many were left out.
fn packed(v: &Value<'_>, to: &mut Vec<u64>, max: usize) -> Result<u64> {
    let mut left_out = 0;
    let mut push = |n: u64| {
        if to.len() < max {
            to.push(n);
        } else {
            left_out += 1;
        }
    };
    match v {
        Value::Varint(n) => push(*n),
        Value::Bytes(b) => {
            let mut b = *b;
            while !b.is_empty() {
                push(decode_varint(&mut b)?);
            }
        }
        Value::Other => {}
    }
    Ok(left_out)
}

fn loc(b: &[u8], cut: &mut Capped) -> Result<proto::Loc> {
    let mut l = proto::Loc::default();
    for f in Fields(b) {
        let (tag, v) = f?;
        match tag {
            1 => l.file = text(&v, caps::MAX_PATH, cut),
            2 => l.line = varint(&v) as u32,
            3 => l.column = varint(&v) as u32,
            _ => {}
        }
    }
    Ok(l)
}

/// A message of the groups stream.
pub fn groups(b: &[u8], cut: &mut Capped) -> Result<proto::Groups> {
    let mut g = proto::Groups::default();
    for f in Fields(b) {
        let (tag, v) = f?;
        match tag {
            1 => g.now_unix_ns = varint(&v) as i64,
            2 if g.groups.len() < caps::MAX_GROUPS => g.groups.push(row(bytes(&v), cut)?),
            3 if g.history.len() < caps::MAX_GROUPS => {
                g.history.push(site_history(bytes(&v), cut)?)
            }
            2 | 3 => cut.groups += 1,
            4 => g.since_unix_ns = varint(&v) as i64,
            _ => {}
        }
    }
    Ok(g)
}

fn row(b: &[u8], cut: &mut Capped) -> Result<proto::GroupRow> {
    let mut r = proto::GroupRow::default();
    for f in Fields(b) {
        let (tag, v) = f?;
        let n = varint(&v);
        match tag {
            1 => r.location = Some(loc(bytes(&v), cut)?),
            2 => r.live = n,
            3 => r.running = n,
            4 => r.idle = n,
            5 => r.spawned = n,
            6 => r.terminated = n,
            7 => r.polls = n,
            8 => r.busy_ns = n,
            9 => r.oldest_created_unix_ns = n as i64,
            10 => r.earliest_idle_unix_ns = n as i64,
            11 => r.longest_poll_ns = n,
            12 if r.parents.len() < caps::MAX_PARENTS => r.parents.push(parent(bytes(&v), cut)?),
            12 => cut.parents += 1,
            13 => r.unparented = n,
            14 => cut.buckets += packed(&v, &mut r.ages, caps::MAX_BUCKETS)?,
            15 => r.terminated_lifetime_ns = n,
            16 => r.reachable = n,
            17 => r.waits_held = n,
            18 => r.newest_wait_unix_ns = n as i64,
            19 => cut.buckets += packed(&v, &mut r.lifetimes, caps::MAX_BUCKETS)?,
            20 => r.split = n != 0,
            21 => r.spawner = Some(loc(bytes(&v), cut)?),
            _ => {}
        }
    }
    Ok(r)
}

fn parent(b: &[u8], cut: &mut Capped) -> Result<proto::ParentCount> {
    let mut p = proto::ParentCount::default();
    for f in Fields(b) {
        let (tag, v) = f?;
        match tag {
            1 => p.location = Some(loc(bytes(&v), cut)?),
            2 => p.tasks = varint(&v),
            _ => {}
        }
    }
    Ok(p)
}

fn site_history(b: &[u8], cut: &mut Capped) -> Result<proto::SiteHistory> {
    let mut h = proto::SiteHistory::default();
    for f in Fields(b) {
        let (tag, v) = f?;
        match tag {
            1 => h.location = Some(loc(bytes(&v), cut)?),
            2 => h.first_unix_sec = varint(&v),
            3 => cut.history += packed(&v, &mut h.spawned, caps::MAX_HISTORY_SECS)?,
            4 => cut.history += packed(&v, &mut h.terminated, caps::MAX_HISTORY_SECS)?,
            5 => h.split = varint(&v) != 0,
            6 => h.spawner = Some(loc(bytes(&v), cut)?),
            _ => {}
        }
    }
    Ok(h)
}

/// A page of a group's tasks.
pub fn page(b: &[u8], cut: &mut Capped) -> Result<proto::TaskPage> {
    let mut p = proto::TaskPage::default();
    for f in Fields(b) {
        let (tag, v) = f?;
        match tag {
            1 if p.tasks.len() < caps::MAX_PAGE_TASKS => p.tasks.push(task_row(bytes(&v), cut)?),
            1 => cut.tasks += 1,
            2 => p.next_after_id = varint(&v),
            _ => {}
        }
    }
    Ok(p)
}

fn task_row(b: &[u8], cut: &mut Capped) -> Result<proto::TaskRow> {
    let mut t = proto::TaskRow::default();
    for f in Fields(b) {
        let (tag, v) = f?;
        let n = varint(&v);
        match tag {
            1 => t.id = n,
            2 => t.parent_id = n,
            3 => t.parent_location = Some(loc(bytes(&v), cut)?),
            4 => t.created_unix_ns = n as i64,
            5 => t.polls = n,
            6 => t.busy_ns = n,
            7 => t.running_since_unix_ns = n as i64,
            8 => t.idle_since_unix_ns = n as i64,
            9 => t.reachable = n != 0,
            _ => {}
        }
    }
    Ok(t)
}

/// A reply for waits. Traces are kept as a prefix (tasks name them by
/// index), within [`caps::MAX_TRACES`] and [`caps::MAX_DUMP_FRAMES`].
pub fn captures(b: &[u8], cut: &mut Capped) -> Result<proto::DumpReply> {
    let mut d = proto::DumpReply::default();
    let mut frames_left = caps::MAX_DUMP_FRAMES;
    let mut full = false;
    for f in Fields(b) {
        let (tag, v) = f?;
        let n = varint(&v);
        match tag {
            1 if full || d.traces.len() >= caps::MAX_TRACES => cut.traces += 1,
            1 => match trace(bytes(&v), &mut frames_left, cut)? {
                Some(t) => d.traces.push(t),
                None => {
                    full = true;
                    cut.traces += 1;
                }
            },
            2 if d.tasks.len() < caps::MAX_DUMP_TASKS => d.tasks.push(task_trace(bytes(&v))?),
            2 => cut.tasks += 1,
            3 => d.capture_ns = n,
            4 => d.resolve_ns = n,
            5 => d.taken_unix_ns = n as i64,
            6 if d.locations.len() < caps::MAX_GROUPS => d.locations.push(loc(bytes(&v), cut)?),
            6 => cut.groups += 1,
            7 => d.unlisted = n,
            8 => d.round_ns = n,
            9 => cut.tasks += packed(&v, &mut d.agent_wakers, caps::MAX_DUMP_TASKS)?,
            _ => {}
        }
    }
    Ok(d)
}

/// One trace, or `None` when it does not fit in the frames left.
fn trace(b: &[u8], frames_left: &mut usize, cut: &mut Capped) -> Result<Option<proto::Trace>> {
    let mut t = proto::Trace::default();
    let mut kept = 0;
    for f in Fields(b) {
        let (tag, v) = f?;
        if tag != 1 {
            continue;
        }
        if t.leaves.len() >= caps::MAX_LEAVES {
            cut.frames += 1;
            continue;
        }
        let l = leaf(bytes(&v), cut)?;
        kept += l.frames.len();
        t.leaves.push(l);
    }
    if kept > *frames_left {
        return Ok(None);
    }
    *frames_left -= kept;
    Ok(Some(t))
}

/// A leaf's innermost [`caps::MAX_FRAMES`] frames (the last ones).
fn leaf(b: &[u8], cut: &mut Capped) -> Result<proto::Leaf> {
    let count = Fields(b).filter(|f| matches!(f, Ok((2, _)))).count();
    let skip = count.saturating_sub(caps::MAX_FRAMES);
    cut.frames += skip as u64;
    let mut l = proto::Leaf::default();
    let mut seen = 0;
    for f in Fields(b) {
        let (tag, v) = f?;
        if tag != 2 {
            continue;
        }
        seen += 1;
        if seen > skip {
            l.frames.push(frame(bytes(&v), cut)?);
        }
    }
    Ok(l)
}

fn frame(b: &[u8], cut: &mut Capped) -> Result<proto::Frame> {
    let mut fr = proto::Frame::default();
    for f in Fields(b) {
        let (tag, v) = f?;
        match tag {
            1 => fr.name = text(&v, caps::MAX_FRAME_TEXT, cut),
            2 => fr.file = text(&v, caps::MAX_FRAME_TEXT, cut),
            3 => fr.line = varint(&v) as u32,
            _ => {}
        }
    }
    Ok(fr)
}

fn task_trace(b: &[u8]) -> Result<proto::TaskTrace> {
    let mut t = proto::TaskTrace::default();
    for f in Fields(b) {
        let (tag, v) = f?;
        let n = varint(&v);
        match tag {
            1 => t.id = n,
            2 => t.trace = n as u32,
            3 => t.location = n as u32,
            4 => t.captured_unix_ns = n as i64,
            5 => t.spawner = n as u32,
            6 => t.split = n != 0,
            _ => {}
        }
    }
    Ok(t)
}

/// The agent's `Info`.
pub fn info(b: &[u8], cut: &mut Capped) -> Result<proto::InfoReply> {
    let mut i = proto::InfoReply::default();
    for f in Fields(b) {
        let (tag, v) = f?;
        let n = varint(&v);
        match tag {
            1 => i.agent_version = text(&v, 64, cut),
            2 => i.dumps_supported = n != 0,
            3 => i.why_not = text(&v, super::error::MAX_REASON, cut),
            4 => i.min_interval_ms = n,
            5 if i.recent_dumps.len() < caps::MAX_RECENT_DUMPS => {
                let mut w = proto::DumpWindow::default();
                for f in Fields(bytes(&v)) {
                    match f? {
                        (1, x) => w.start_unix_ns = varint(&x) as i64,
                        (2, x) => w.end_unix_ns = varint(&x) as i64,
                        _ => {}
                    }
                }
                i.recent_dumps.push(w);
            }
            6 => i.holds_wakers = n != 0,
            _ => {}
        }
    }
    Ok(i)
}

/// A decoded message and what was left out of it.
#[derive(Debug)]
pub struct Decoded<T> {
    pub msg: T,
    pub cut: Capped,
}

/// tonic's codec for one of the agent's calls: the request encoded by
/// prost, the reply decoded by `D` within the caps.
pub struct Codec<Req, T> {
    decode: fn(&[u8], &mut Capped) -> Result<T>,
    _req: std::marker::PhantomData<fn(Req)>,
}

impl<Req, T> Codec<Req, T> {
    pub fn new(decode: fn(&[u8], &mut Capped) -> Result<T>) -> Self {
        Codec {
            decode,
            _req: std::marker::PhantomData,
        }
    }
}

pub struct Encoder<Req>(std::marker::PhantomData<fn(Req)>);
pub struct Decoder<T>(fn(&[u8], &mut Capped) -> Result<T>);

impl<Req: prost::Message> tonic::codec::Encoder for Encoder<Req> {
    type Item = Req;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Req,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> std::result::Result<(), tonic::Status> {
        let mut buf = Vec::with_capacity(item.encoded_len());
        item.encode(&mut buf)
            .map_err(|e| tonic::Status::internal(e.to_string()))?;
        dst.put_slice(&buf);
        Ok(())
    }
}

impl<T> tonic::codec::Decoder for Decoder<T> {
    type Item = Decoded<T>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> std::result::Result<Option<Decoded<T>>, tonic::Status> {
        // tonic holds a whole message in one buffer before decoding it.
        let n = src.remaining();
        let whole = src.chunk().len() == n;
        let owned;
        let b: &[u8] = if whole {
            &src.chunk()[..n]
        } else {
            owned = src.copy_to_bytes(n);
            &owned
        };
        let mut cut = Capped::default();
        let msg = (self.0)(b, &mut cut).map_err(|e| {
            tonic::Status::internal(format!("malformed message from the agent: {e}"))
        })?;
        if whole {
            src.advance(n);
        }
        Ok(Some(Decoded { msg, cut }))
    }
}

impl<Req, T> tonic::codec::Codec for Codec<Req, T>
where
    Req: prost::Message + Send + 'static,
    T: Send + 'static,
{
    type Encode = Req;
    type Decode = Decoded<T>;
    type Encoder = Encoder<Req>;
    type Decoder = Decoder<T>;

    fn encoder(&mut self) -> Encoder<Req> {
        Encoder(std::marker::PhantomData)
    }

    fn decoder(&mut self) -> Decoder<T> {
        Decoder(self.decode)
    }
}

#[cfg(test)]
#[path = "capped_tests.rs"]
mod tests;
