// What the timeline shows when there is nothing (yet, or for these filters).

import type { Status } from '../../bindings';
import { clientUrl } from '../../lib/format';

export function Empty({ info, filtered, onClear }: { info: Status | null; filtered: boolean; onClear: () => void }) {
  if (filtered) {
    return (
      <div class="empty">
        <p>No events match these filters.</p>
        <button type="button" class="plain" onClick={onClear}>
          Clear filters
        </button>
      </div>
    );
  }
  const url = clientUrl(info);
  return (
    <div class="empty">
      <p class="empty-title">Nothing has happened yet.</p>
      <p>
        Point an AI client at <code>{url}</code>. When it asks for access, Gatehouse shows you who asks and for which
        tools; every call it makes then appears here.
      </p>
    </div>
  );
}

