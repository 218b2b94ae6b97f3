// Generated from src-tauri/src/ipc.rs by `UPDATE_BINDINGS=1 cargo test -p gatehouse-desktop bindings`.
// Do not edit by hand.

export type Risk = "read" | "write" | "destructive";

export type Tool = { name: string, title: string | null, description: string, risk: Risk, };

export type PendingKind = "authorization" | "step_up" | "tool_call" | "tool_changed";

export type PendingRequest = { id: string, kind: PendingKind, client_id: string, client_name: string, verified: boolean, 
/**
 * The https domain of a verified (metadata document) client.
 */
verified_domain: string | null, 
/**
 * Where the browser returns (authorization and step-up).
 */
redirect_host: string | null, server: string, 
/**
 * Also shown on the waiting browser page, so the person can match the two.
 */
phrase: string | null, 
/**
 * The tools to decide on: requested, the new ones of a step-up, the held call's, or the changed one.
 */
tools: Array<Tool>, 
/**
 * For a step-up: what the agent already holds.
 */
granted_tools: Array<string>, 
/**
 * For a held call: its arguments (redacted, size-capped).
 */
arguments: unknown, 
/**
 * For a changed tool: what changed, one line per field.
 */
changes: Array<string>, created_at: number, expires_at: number | null, };

export type Duration = "once" | "hour" | "day" | "forever";

export type GrantDuration = "once" | "timed" | "forever";

export type Grant = { id: string, client_id: string, server: string, tools: Array<string>, 
/**
 * Granted tools whose every call waits for the person.
 */
ask_tools: Array<string>, duration: GrantDuration, created_at: number, expires_at: number | null, revoked_at: number | null, decided_by: string, };

export type ClientKind = "registered" | "metadata_document" | "preconfigured";

export type Agent = { client_id: string, name: string, kind: ClientKind, verified: boolean, verified_domain: string | null, redirect_uris: Array<string>, first_seen: number, last_seen: number | null, grants: Array<Grant>, };

export type Outcome = "allowed" | "denied" | "error" | "revoked";

export type AuditEvent = { id: number, at: number, 
/**
 * `tool_call`, `consent_approved`, `agent_revoked`, … (see the core's `EventKind`).
 */
kind: string, outcome: Outcome, client_id: string | null, agent: string | null, server: string | null, tool: string | null, grant_id: string | null, actor: string | null, duration_ms: number | null, 
/**
 * Event-specific facts, e.g. the redacted argument summary of a tool call.
 */
detail: unknown, };

export type AuditFilter = { client_id: string | null, server: string | null, outcome: Outcome | null, since: number | null, until: number | null, text: string | null, };

export type AuditPage = { events: Array<AuditEvent>, total: number | null, };

export type ExportFormat = "jsonl" | "csv";

export type Server = { name: string, 
/**
 * The URL to give to an AI client.
 */
url: string, 
/**
 * `stdio` or `http`.
 */
transport: string, 
/**
 * The command line, or the upstream URL.
 */
target: string, description: string | null, 
/**
 * The tools, when the gateway has listed them recently.
 */
tools: Array<Tool> | null, };

export type Revoked = { client_ids: Array<string>, grants: Array<string>, tokens: number, };

export type AppInfo = { url: string, port: number, data_dir: string, version: string, consent_timeout_ms: number, servers: Array<string>, };

export type ErrorCode = "not_found" | "bad_request" | "ambiguous" | "too_soon" | "internal";

export type IpcError = { code: ErrorCode, message: string, };

export const EVENTS = {
  auditEvent: "audit-event",
  auditLagged: "audit-lagged",
  pendingChanged: "pending-changed",
} as const;
