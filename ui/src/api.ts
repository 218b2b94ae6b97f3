// Typed wrappers over the Tauri commands and events. Types come from
// bindings.ts, which is generated from src-tauri/src/ipc.rs.

import { invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';
import {
  EVENTS,
  type Agent,
  type AppInfo,
  type AuditEvent,
  type AuditFilter,
  type AuditPage,
  type Duration,
  type ErrorCode,
  type ExportFormat,
  type Grant,
  type IpcError,
  type PendingRequest,
  type Revoked,
  type Server,
  type Tool,
} from './bindings';

export const api = {
  appInfo: () => invoke<AppInfo>('app_info'),
  pending: () => invoke<PendingRequest[]>('pending'),
  consentShown: (request_id: string) => invoke<null>('consent_shown', { request_id }),
  approve: (request_id: string, tools: string[], duration: Duration) =>
    invoke<Grant>('approve', { request_id, tools, duration }),
  deny: (request_id: string) => invoke<null>('deny', { request_id }),
  auditPage: (filter: AuditFilter, before_id: number | null, limit: number) =>
    invoke<AuditPage>('audit_page', { filter, before_id, limit }),
  auditExport: (filter: AuditFilter, format: ExportFormat) => invoke<string>('audit_export', { filter, format }),
  agents: () => invoke<Agent[]>('agents'),
  grant: (grant_id: string) => invoke<Grant | null>('grant', { grant_id }),
  servers: () => invoke<Server[]>('servers'),
  serverTools: (server: string) => invoke<Tool[]>('server_tools', { server }),
  revokeAgent: (client_id: string) => invoke<Revoked>('revoke_agent', { client_id }),
  revokeGrant: (grant_id: string) => invoke<Revoked>('revoke_grant', { grant_id }),
  revokeAll: () => invoke<Revoked>('revoke_all'),
  showConsent: () => invoke<null>('show_consent'),
};

export const on = {
  auditEvent: (f: (e: AuditEvent) => void): Promise<UnlistenFn> =>
    listen<AuditEvent>(EVENTS.auditEvent, (ev) => f(ev.payload)),
  auditLagged: (f: () => void): Promise<UnlistenFn> => listen(EVENTS.auditLagged, () => f()),
  pendingChanged: (f: (p: PendingRequest[]) => void): Promise<UnlistenFn> =>
    listen<PendingRequest[]>(EVENTS.pendingChanged, (ev) => f(ev.payload)),
};

export function isIpcError(e: unknown): e is IpcError {
  return typeof e === 'object' && e !== null && 'code' in e && 'message' in e;
}

/** The error's stable code ('internal' for anything that is not an IpcError). */
export function errorCode(e: unknown): ErrorCode {
  return isIpcError(e) ? e.code : 'internal';
}

export function errorMessage(e: unknown): string {
  if (isIpcError(e)) return e.message;
  return e instanceof Error ? e.message : String(e);
}
