// The app's commands and events. The typed command wrappers and every type
// are generated into bindings.ts from the Rust side (gatehouse::api and
// src-tauri/src/commands.rs); this file adds the event listeners and the
// error helpers.

import { listen, type UnlistenFn } from '@tauri-apps/api/event';
import { commands, EVENTS, type ApiError, type AuditEvent, type ErrorCode, type PendingItem } from './bindings';

export const api = commands;

export const on = {
  auditEvent: (f: (e: AuditEvent) => void): Promise<UnlistenFn> =>
    listen<AuditEvent>(EVENTS.auditEvent, (ev) => f(ev.payload)),
  pendingChanged: (f: (p: PendingItem[]) => void): Promise<UnlistenFn> =>
    listen<PendingItem[]>(EVENTS.pendingChanged, (ev) => f(ev.payload)),
};

export function isApiError(e: unknown): e is ApiError {
  return typeof e === 'object' && e !== null && 'code' in e && 'message' in e;
}

/** The error's stable code ('internal' for anything that is not an ApiError). */
export function errorCode(e: unknown): ErrorCode {
  return isApiError(e) ? e.code : 'internal';
}

export function errorMessage(e: unknown): string {
  if (isApiError(e)) return e.message;
  return e instanceof Error ? e.message : String(e);
}
