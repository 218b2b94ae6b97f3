// Generated from gatehouse::api (types) and src-tauri/src/commands.rs (commands) by
// `UPDATE_BINDINGS=1 cargo test -p gatehouse-desktop bindings`. Do not edit by hand.

import { invoke } from '@tauri-apps/api/core';

export type Risk = "read" | "write" | "destructive";

export type Tool = { name: string, title: string | null, description: string, risk: Risk, };

export type PendingKind = "authorization" | "step_up" | "tool_call" | "tool_changed" | "instructions_changed";

export type Lookalike = { 
/**
 * The other (earlier) agent's name and client id.
 */
name: string, client_id: string, };

export type ArgumentField = { name: string, 
/**
 * The tool's schema lists it as required (what the call acts on).
 */
required: boolean, 
/**
 * The value's JSON, up to [`PREVIEW_CHARS`] characters.
 */
preview: string, 
/**
 * Characters of the value's JSON left out of `preview` (0: nothing cut).
 */
cut: number, };

export type PendingItem = { id: string, kind: PendingKind, client_id: string, 
/**
 * What the agent calls itself (a claim unless `verified`).
 */
client_name: string, verified: boolean, 
/**
 * The https domain of a verified (metadata document) client.
 */
verified_domain: string | null, 
/**
 * Another agent, registered earlier, whose name looks like this one's.
 */
lookalike_of: Lookalike | null, 
/**
 * The program that registered the agent, as the kernel saw it (evidence,
 * where the name is a claim); none when unknown.
 */
program: Program | null, 
/**
 * For a consent request: what the agent's rules say about some of its
 * tools (the window starts from these).
 */
rule_choices: Array<RuleChoice>, 
/**
 * Where the browser returns (authorization and step-up).
 */
redirect_host: string | null, server: string, 
/**
 * Also shown on the waiting browser page, so the person can match the two.
 */
phrase: string | null, 
/**
 * The tools to decide on: requested, the new ones of a step-up, the held
 * call's, or the changed one.
 */
tools: Array<Tool>, 
/**
 * For a step-up: what the agent already holds.
 */
granted_tools: Array<string>, 
/**
 * For a held call: its arguments, whole (values under secret-looking keys redacted).
 */
arguments: unknown, 
/**
 * For a held call: its arguments in reading order, with what is cut said.
 */
argument_fields: Array<ArgumentField>, 
/**
 * For a changed tool: what changed, one line per field.
 */
changes: Array<string>, 
/**
 * For a first authorization: what the server tells the agent's model
 * (its `instructions`), which approving pins with the new grant unless
 * something was decided about the agent's instructions there before.
 */
instructions: string | null, created_at: number, expires_at: number | null, };

export type ToolChoice = { "kind": "read_only" } | { "kind": "all" } | { "kind": "only", "tools": Array<string> };

export type AskChoice = { "kind": "destructive" } | { "kind": "none" } | { "kind": "only", "tools": Array<string> };

export type DurationChoice = { "kind": "once" } | { "kind": "for", "ms": number } | { "kind": "forever" };

export type Approval = { tools: ToolChoice, 
/**
 * Which granted tools are held for a decision on every call (default: the destructive ones).
 */
ask: AskChoice, duration: DurationChoice, 
/**
 * Let the agent see the tools it was not granted and ask for one by
 * calling it (a step-up); off by default.
 */
ask_for_more: boolean, 
/**
 * Remember these choices for this agent on this server (rules applied
 * the next time it asks).
 */
remember: boolean, };

export type GrantDuration = "once" | "timed" | "forever";

export type Grant = { id: string, client_id: string, server: string, tools: Array<string>, 
/**
 * Granted tools whose every call is held for the person's decision.
 */
ask_tools: Array<string>, scope: string, duration: GrantDuration, created_at: number, expires_at: number | null, revoked_at: number | null, decided_by: string, 
/**
 * The agent sees the tools it was not granted (marked as needing
 * approval) and may ask for one by calling it (a step-up).
 */
may_ask_more: boolean, };

export type CallStatus = "pending" | "allowed" | "denied" | "expired";

export type HeldCall = { id: string, client_id: string, server: string, grant_id: string, tool: string, 
/**
 * Redacted and size-capped, for the person to read.
 */
arguments: unknown, status: CallStatus, created_at: number, expires_at: number, decided_at: number | null, decided_by: string | null, };

export type ReviewStatus = "pending" | "approved" | "denied";

export type ToolReview = { id: string, grant_id: string, client_id: string, server: string, tool: string, old_definition: unknown, new_definition: unknown, new_hash: string, status: ReviewStatus, created_at: number, decided_at: number | null, decided_by: string | null, };

export type Decided = { "kind": "grant", "value": Grant } | { "kind": "call", "value": HeldCall } | { "kind": "review", "value": ToolReview };

export type ClientKind = "registered" | "metadata_document" | "preconfigured";

export type Ancestor = { pid: number, 
/**
 * The executable's path, or the process name when the path is unreadable.
 */
name: string, };

export type Program = { pid: number, 
/**
 * The executable's path (`None` when the kernel would not say, e.g.
 * another user's process).
 */
exe: string | null, 
/**
 * Its arguments, joined with spaces, cut at 2 KiB (untrusted text).
 */
cmdline: string, 
/**
 * Who started it: parent first, as far as four levels up.
 */
started_by: Array<Ancestor>, };

export type RuleAction = "allow" | "ask" | "deny";

export type RuleTarget = { "kind": "risk", "value": Risk } | { "kind": "tool", "value": string };

export type Rule = { id: string, client_id: string, 
/**
 * The server it applies on; `None`: every server.
 */
server: string | null, target: RuleTarget, action: RuleAction, created_at: number, created_by: string, };

export type RuleChoice = { tool: string, action: RuleAction, rule_id: string, };

export type NewRule = { agent: string, server: string | null, target: RuleTarget, action: RuleAction, };

export type Paused = { at: number, by: string, };

export type PauseState = { all: Paused | null, agents: { [key in string]?: Paused }, };

export type Agent = { client_id: string, 
/**
 * What the agent calls itself (a claim unless `verified`).
 */
name: string, kind: ClientKind, verified: boolean, 
/**
 * The https domain of a verified (metadata document) client.
 */
verified_domain: string | null, 
/**
 * Another agent, registered earlier, whose name looks like this one's.
 */
lookalike_of: Lookalike | null, redirect_uris: Array<string>, first_seen: number, last_seen: number | null, grants: Array<Grant>, 
/**
 * Paused on its own (see also `Status::paused` for every agent).
 */
paused: Paused | null, 
/**
 * The program that registered it, as the kernel saw it (none when unknown).
 */
program: Program | null, };

export type EventKind = "client_registered" | "consent_requested" | "consent_approved" | "consent_denied" | "consent_expired" | "token_issued" | "token_refreshed" | "token_revoked" | "code_replayed" | "refresh_reused" | "grant_revoked" | "agent_revoked" | "tool_call" | "call_started" | "task_result" | "mcp_request" | "call_held" | "call_decided" | "tool_changed" | "tool_reviewed" | "audit_truncated" | "config_changed" | "paused" | "resumed" | "program_mismatch" | "grant_changed" | "rule_changed" | "audit_pruned";

export type Outcome = "allowed" | "denied" | "error" | "revoked";

export type AuditEvent = { id: number, at: number, kind: EventKind, outcome: Outcome, 
/**
 * The agent (OAuth client) the event is about.
 */
client_id: string | null, agent: string | null, server: string | null, tool: string | null, 
/**
 * The grant that allowed (or was changed by) this event.
 */
grant_id: string | null, 
/**
 * The person who decided, for consent and revocation events.
 */
actor: string | null, duration_ms: number | null, 
/**
 * Event-specific facts, e.g. the redacted argument summary of a tool call.
 */
detail: unknown, 
/**
 * The seal of the event before it (`audit::chain`).
 */
prev_seal: string | null, 
/**
 * This event's seal: a keyed hash over `prev_seal` and its content.
 */
seal: string | null, };

export type AuditFilter = { client_id: string | null, server: string | null, outcome: Outcome | null, 
/**
 * Inclusive lower bound on `at` (Unix ms).
 */
since: number | null, 
/**
 * Exclusive upper bound on `at` (Unix ms).
 */
until: number | null, 
/**
 * Case-insensitive substring of the agent, server, tool, kind, actor or detail.
 */
text: string | null, };

export type AuditPage = { events: Array<AuditEvent>, 
/**
 * On a first page: how many events match, counted up to
 * [`AUDIT_COUNT_CAP`] (`total_more`: there are more than that, or the
 * count stopped at its bound of rows read: at least that many).
 */
total: number | null, total_more: boolean, };

export type ProblemKind = "edited" | "out_of_chain" | "unsealed" | "truncated";

export type AuditProblem = { id: number, what: ProblemKind, 
/**
 * One sentence for the person.
 */
message: string, };

export type AuditVerification = { 
/**
 * Events read.
 */
events: number, 
/**
 * The events that do not hold, in order (at most 100 are listed).
 */
problems: Array<AuditProblem>, 
/**
 * Problems found in all (more than are listed, when over 100).
 */
problem_count: number, 
/**
 * For a file: places where the chain skips (a filtered export, or
 * events removed from the file). Each event was still checked.
 */
gaps: number, };

export type ExportFormat = "jsonl" | "csv";

export type Transport = "stdio" | "http";

export type ServerState = { "state": "not_started" } | { "state": "idle" } | { "state": "running", sessions: number, } | { "state": "crashed", stderr: Array<string>, } | { "state": "held_back", seconds: number, stderr: Array<string>, } | { "state": "disabled" } | { "state": "needs_login", reason: string, };

export type Server = { name: string, 
/**
 * The URL to give to an AI client.
 */
url: string, transport: Transport, 
/**
 * The command line, or the upstream URL.
 */
target: string, description: string | null, 
/**
 * The tools, when the gateway has listed them recently.
 */
tools: Array<Tool> | null, state: ServerState, 
/**
 * For each tool granted to someone: the agents that hold it now.
 */
holders: Array<ToolHolders>, 
/**
 * The names of its secrets (values never leave the keychain).
 */
secrets: Array<string>, 
/**
 * A remote server: whether Gatehouse holds a login there.
 */
logged_in: boolean, 
/**
 * Why the last login the person started failed (until the next one).
 */
login_error: string | null, };

export type ConfigChange = { added: Array<string>, 
/**
 * Gone from the file: sessions ended, grants revoked (still listed as such).
 */
removed: Array<string>, 
/**
 * Command, URL, environment or headers changed: sessions restarted.
 */
changed: Array<string>, 
/**
 * `enabled = false` now: sessions ended, grants kept.
 */
disabled: Array<string>, 
/**
 * Settings that apply only when Gatehouse starts again (the port, where secrets live).
 */
after_restart: Array<string>, };

export type ToolHolders = { tool: string, agents: Array<string>, };

export type NewSecret = { 
/**
 * The variable or header name.
 */
key: string, value: string, 
/**
 * A header (else an environment variable).
 */
header: boolean, 
/**
 * What goes before the value, e.g. "Bearer ".
 */
prefix: string, };

export type NewServer = { name: string, 
/**
 * A stdio server: the command and its arguments.
 */
command: string | null, args: Array<string>, 
/**
 * A remote (streamable HTTP) server.
 */
url: string | null, env: { [key in string]?: string }, headers: { [key in string]?: string }, 
/**
 * Values kept in the keychain, never in the file.
 */
secrets: Array<NewSecret>, description: string | null, start_at_launch: boolean, };

export type Revoked = { client_ids: Array<string>, grants: Array<string>, 
/**
 * How many token families it revoked: one per sign-in (the tokens an
 * authorization code issued and every refresh of them).
 */
token_families: number, };

export type ServerRef = { name: string, url: string, };

export type DefaultDuration = "once" | "hour" | "day" | "forever";

export type AskDefault = "destructive" | "none";

export type Theme = "system" | "light" | "dark";

export type Settings = { 
/**
 * The port in the config file.
 */
port: number, 
/**
 * The port Gatehouse listens on now (differs until a restart, or when given on the command line).
 */
listening_port: number, 
/**
 * Set when the command line gave the port (`--port`): it wins over the file's.
 */
port_from_command_line: boolean, consent_timeout_secs: number, default_duration: DefaultDuration, ask_every_time: AskDefault, bind_grants_to_program: boolean, theme: Theme, 
/**
 * Audit events older than this many days are archived and cut (0: kept).
 */
keep_audit_days: number, 
/**
 * Past this many audit events, the oldest are archived and cut (0: no limit).
 */
keep_audit_events: number, config_path: string | null, };

export type SettingsChange = { port: number | null, consent_timeout_secs: number | null, default_duration: DefaultDuration | null, ask_every_time: AskDefault | null, bind_grants_to_program: boolean | null, theme: Theme | null, 
/**
 * 0: keep every event, whatever its age.
 */
keep_audit_days: number | null, 
/**
 * 0: no limit on the number of events.
 */
keep_audit_events: number | null, };

export type SettingsChanged = { settings: Settings, 
/**
 * Set when the port changed: Gatehouse listens on the new one after a restart.
 */
restart_needed: string | null, };

export type Status = { url: string, port: number, data_dir: string, version: string, consent_timeout_ms: number, servers: Array<ServerRef>, 
/**
 * Open agent sessions.
 */
sessions: number, 
/**
 * Items waiting for the person.
 */
pending: number, 
/**
 * The config file in force (none: the built-in demo configuration).
 */
config_path: string | null, 
/**
 * Why the config file as it is now is not in force (the one before runs on).
 */
config_problem: string | null, 
/**
 * Every agent, or which agents, the person paused.
 */
paused: PauseState, };

export type ErrorCode = "not_found" | "bad_request" | "ambiguous" | "conflict" | "too_soon" | "internal";

export type ApiError = { code: ErrorCode, message: string, };

export type ConnectFound = { client: string, title: string, file: string, exists: boolean, 
/**
 * Each server: its name and whether it goes through Gatehouse.
 */
servers: Array<[string, string]>, error: string | null, };

export type ConnectPreview = { client: string, title: string, file: string, 
/**
 * Both files' change as a unified diff.
 */
diff: string, 
/**
 * The servers it puts behind Gatehouse (their names in the client's file).
 */
servers: Array<string>, 
/**
 * Entries left as they are, and why.
 */
skipped: Array<[string, string]>, 
/**
 * Entries that already go through Gatehouse.
 */
connected: Array<string>, 
/**
 * The secrets found (server/NAME), moved to the keychain when asked.
 */
secrets: Array<string>, };

/** The app's commands (src-tauri/src/commands.rs); they reject with an `ApiError`. */
export const commands = {
  /** The running Gatehouse: its URL, servers, data directory. */
  status: () => invoke<Status>('status'),
  /** Everything waiting for the person, oldest first. */
  pending: () => invoke<Array<PendingItem>>('pending'),
  /** The consent window reports that it now shows this request; Allow counts its delay from here. */
  consentShown: (request_id: string) => invoke<null>('consent_shown', { request_id }),
  /** Approves a pending item: a consent request or step-up (the chosen tools for the chosen time), a held call (this once), or a changed tool (its new version). */
  approve: (request_id: string, approval: Approval) => invoke<Decided>('approve', { request_id, approval }),
  /** Denies a pending item: nothing is granted; a held call gets an error. */
  deny: (request_id: string) => invoke<null>('deny', { request_id }),
  /** A page of the timeline, newest first; `before_id` continues below the previous page. */
  auditPage: (filter: AuditFilter, before_id: number | null, limit: number) => invoke<AuditPage>('audit_page', { filter, before_id, limit }),
  /** Writes the events matching the filter to a new file in the downloads folder; returns its path. */
  auditExport: (filter: AuditFilter, format: ExportFormat) => invoke<string>('audit_export', { filter, format }),
  /** Checks that no event of the audit log was edited, deleted, inserted or moved. */
  auditVerify: () => invoke<AuditVerification>('audit_verify'),
  /** Every agent with its grants in force. */
  agents: () => invoke<Array<Agent>>('agents'),
  /** One grant, in force or not. */
  grant: (grant_id: string) => invoke<Grant | null>('grant', { grant_id }),
  /** The fronted servers (their tools if listed recently). */
  servers: () => invoke<Array<Server>>('servers'),
  /** A server's tools, from the server itself (starting it if needed). */
  serverTools: (server: string) => invoke<Array<Tool>>('server_tools', { server }),
  /** Revokes an agent: its next request fails, its sessions end. */
  revokeAgent: (client_id: string) => invoke<Revoked>('revoke_agent', { client_id }),
  /** Revokes one grant and its tokens. */
  revokeGrant: (grant_id: string) => invoke<Revoked>('revoke_grant', { grant_id }),
  /** The panic button: every agent loses every grant. */
  revokeAll: () => invoke<Revoked>('revoke_all'),
  /** Every agent's rules (applied when it asks for tools). */
  rules: () => invoke<Array<Rule>>('rules'),
  /** Adds a rule for an agent (replacing one for the same tools). */
  addRule: (rule: NewRule) => invoke<Rule>('add_rule', { rule }),
  /** Changes what a rule decides, or removes it (no action). */
  changeRule: (id: string, action: RuleAction | null) => invoke<null>('change_rule', { id, action }),
  /** The settings the person can change. */
  settings: () => invoke<Settings>('settings'),
  /** Writes changed settings to the config file; in force at once (a new port at the next start). */
  changeSettings: (change: SettingsChange) => invoke<SettingsChanged>('change_settings', { change }),
  /** Whether the app starts (hidden, in the tray) when the person logs in. */
  autostart: () => invoke<boolean>('autostart'),
  /** Starts the app at login (hidden, in the tray), or stops that. */
  setAutostart: (on: boolean) => invoke<boolean>('set_autostart', { on }),
  /** Lets a grant's agent see the tools it was not granted and ask for one by calling it (or stops that). */
  setMayAskMore: (grant_id: string, on: boolean) => invoke<Grant>('set_may_ask_more', { grant_id, on }),
  /** Pauses every agent (no client id) or one: calls refused until resumed, nothing revoked. */
  pause: (client_id: string | null) => invoke<PauseState>('pause', { client_id }),
  /** Resumes every agent (no client id), or one paused on its own. */
  resume: (client_id: string | null) => invoke<PauseState>('resume', { client_id }),
  /** Adds a server (its secrets to the keychain, the rest to the config file); in force at once. */
  serverAdd: (server: NewServer) => invoke<ConfigChange>('server_add', { server }),
  /** Removes a server: its sessions end, its grants are revoked. */
  serverRemove: (name: string) => invoke<ConfigChange>('server_remove', { name }),
  /** Serves a server again, or stops serving it (keeping it and its grants). */
  serverSetEnabled: (name: string, enabled: boolean) => invoke<ConfigChange>('server_set_enabled', { name, enabled }),
  /** Starts a server afresh; returns how many sessions ended. */
  serverRestart: (name: string) => invoke<number>('server_restart', { name }),
  /** The last lines a server wrote to stderr. */
  serverLogs: (name: string, lines: number) => invoke<Array<string>>('server_logs', { name, lines }),
  /** Starts Gatehouse's login at a remote server in the browser; returns the URL it opened. */
  serverLogin: (name: string) => invoke<string>('server_login', { name }),
  /** Forgets Gatehouse's login at a remote server. */
  serverLogout: (name: string) => invoke<null>('server_logout', { name }),
  /** Sets or replaces a server's secret (typed once, kept in the keychain). */
  serverSecretSet: (server: string, name: string, value: string) => invoke<null>('server_secret_set', { server, name, value }),
  /** Removes a server's secret. */
  serverSecretRemove: (server: string, name: string) => invoke<null>('server_secret_remove', { server, name }),
  /** The AI clients found on this machine, and the MCP servers each has. */
  connectClients: () => invoke<Array<ConnectFound>>('connect_clients'),
  /** The change that would put a client's servers behind Gatehouse (nothing is written). */
  connectPreview: (client: string, move_secrets: boolean) => invoke<ConnectPreview>('connect_preview', { client, move_secrets }),
  /** Makes that change (with a backup `gatehouse disconnect` restores); says what was done. */
  connectApply: (client: string, move_secrets: boolean) => invoke<string>('connect_apply', { client, move_secrets }),
  /** Brings up the consent window for the waiting requests (from the main window's banner). */
  showConsent: () => invoke<null>('show_consent'),
};

export const EVENTS = {
  auditEvent: "audit-event",
  pendingChanged: "pending-changed",
} as const;
