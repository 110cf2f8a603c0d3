//! How much of a hooks source's messages the viewer keeps, whatever a
//! target sends: memory follows what is shown, not what is sent. `conn`
//! decodes the agent's messages within these caps (the rest is skipped
//! where it is read, never held) and counts what it left out, so the
//! status line and reports can say so. Each cap sits well above what a
//! real agent sends (its own bounds are named beside them).

/// Spawn locations (groups) of one message of the groups stream, and
/// sites of its history. A binary's spawn sites are a fixed set; the
/// agent's `/metrics` keeps 1 000 by default.
pub const MAX_GROUPS: usize = 4_096;
/// Spawn locations the model follows at once (their count histories): a
/// location no message named for longest goes first.
pub const MAX_TRACKED: usize = 2 * MAX_GROUPS;
/// Bytes of a location's file name from the agent (a real one, even a
/// Nix store or registry path, is under 300).
pub const MAX_PATH: usize = 512;
/// Spawning locations per group (the agent sends 8).
pub const MAX_PARENTS: usize = 8;
/// Age and lifetime buckets per group (the agent sends 20; bucket 40
/// starts at 2^39 s, longer than any process ran).
pub const MAX_BUCKETS: usize = 40;
/// Seconds of history per site in the first message (the agent keeps 300).
pub const MAX_HISTORY_SECS: usize = 900;
/// Tasks of a group's page (the viewer asks this many; the agent sends up
/// to 10 000 when asked).
pub const MAX_PAGE_TASKS: usize = 2_000;
/// Distinct traces of a reply for waits (the agent keeps 8 192 stacks).
pub const MAX_TRACES: usize = 8_192;
/// Leaves of one trace, and frames of one leaf (the agent records 16
/// leaves of 64 frames, more once inlined frames are resolved). A leaf cut
/// keeps its innermost frames: the waits are read from those.
pub const MAX_LEAVES: usize = 16;
pub const MAX_FRAMES: usize = 128;
/// Frames of a whole reply for waits, all traces together.
pub const MAX_DUMP_FRAMES: usize = 131_072;
/// Bytes of a frame's function or file name (a demangled name with its
/// generics can run to a kilobyte; past this it is cut with `…`).
pub const MAX_FRAME_TEXT: usize = 1_024;
/// Tasks of a reply for waits (the agent lists at most 200 000), and the
/// wrapped tasks it names (console mode).
pub const MAX_DUMP_TASKS: usize = 200_000;
/// Entries of the agent's recent capture windows (`Info`; it keeps 8).
pub const MAX_RECENT_DUMPS: usize = 16;

/// What the viewer did not keep of a target's messages because it was
/// over a cap, counted since attaching (each count is of items left out).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capped {
    /// Groups (and history sites) beyond [`MAX_GROUPS`] in a message.
    pub groups: u64,
    /// Locations and frame names cut to their length cap.
    pub strings: u64,
    /// Spawning locations beyond [`MAX_PARENTS`].
    pub parents: u64,
    /// Age or lifetime buckets beyond [`MAX_BUCKETS`].
    pub buckets: u64,
    /// History seconds beyond [`MAX_HISTORY_SECS`].
    pub history: u64,
    /// Traces beyond [`MAX_TRACES`] or the frames budget.
    pub traces: u64,
    /// Frames and leaves beyond their caps.
    pub frames: u64,
    /// Tasks of a page or a reply for waits beyond their caps.
    pub tasks: u64,
}

impl Capped {
    pub fn add(&mut self, o: &Capped) {
        for (a, b) in self.fields_mut().into_iter().zip(o.fields()) {
            *a = a.saturating_add(b);
        }
    }

    pub fn any(&self) -> bool {
        self.fields().iter().any(|n| *n > 0)
    }

    fn fields(&self) -> [u64; 8] {
        [
            self.groups,
            self.strings,
            self.parents,
            self.buckets,
            self.history,
            self.traces,
            self.frames,
            self.tasks,
        ]
    }

    fn fields_mut(&mut self) -> [&mut u64; 8] {
        [
            &mut self.groups,
            &mut self.strings,
            &mut self.parents,
            &mut self.buckets,
            &mut self.history,
            &mut self.traces,
            &mut self.frames,
            &mut self.tasks,
        ]
    }

    /// Each count that is not zero, with what it counts, in words.
    pub fn described(&self) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        let mut say = |n: u64, what: String| {
            if n > 0 {
                out.push((n, what));
            }
        };
        say(
            self.groups,
            format!("groups over the {MAX_GROUPS} a message may hold: not kept"),
        );
        say(
            self.strings,
            format!("locations or frame names over {MAX_PATH} B (frames {MAX_FRAME_TEXT} B): cut"),
        );
        say(
            self.parents,
            format!("spawning locations over the {MAX_PARENTS} a group keeps: not kept"),
        );
        say(
            self.buckets,
            format!("age buckets over the {MAX_BUCKETS} a group keeps: not kept"),
        );
        say(
            self.history,
            format!("history seconds over the {MAX_HISTORY_SECS} a site keeps: not kept"),
        );
        say(
            self.traces,
            format!(
                "traces over the {MAX_TRACES} (or {MAX_DUMP_FRAMES} frames) a reply for waits keeps: not kept"
            ),
        );
        say(
            self.frames,
            format!(
                "frames over the {MAX_FRAMES} a leaf keeps (or leaves over {MAX_LEAVES}): not kept"
            ),
        );
        say(
            self.tasks,
            format!(
                "tasks over what a page ({MAX_PAGE_TASKS}) or a reply for waits ({MAX_DUMP_TASKS}) keeps: not kept"
            ),
        );
        out
    }
}
