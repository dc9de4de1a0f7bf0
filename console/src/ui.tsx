import type { ApiError } from './api';

/** A refusal with its code and fix, as the API words them. */
export function ErrorNote({ error }: { error: (Error & Partial<Pick<ApiError, 'code' | 'fix' | 'status'>>) | null | undefined }) {
  if (!error) return null;
  return (
    <p class="error" role="alert" data-testid="error">
      {error.message}
      {error.fix && <span class="fix"> Fix: {error.fix}</span>}
    </p>
  );
}
