import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { getToken, needsToken, onAuthChange, setToken } from './api';
import { DeadLetters } from './pages/deadletters';
import { Log } from './pages/log';
import { Pipelines } from './pages/pipelines';
import { Sinks } from './pages/sinks';
import { Snapshots } from './pages/snapshots';
import './style.css';

const PAGES = {
  pipelines: { title: 'Pipelines', view: Pipelines },
  sinks: { title: 'Sinks', view: Sinks },
  snapshots: { title: 'Snapshots', view: Snapshots },
  log: { title: 'Log', view: Log },
  deadletters: { title: 'Dead letters', view: DeadLetters },
} as const;
type Page = keyof typeof PAGES;

function pageFromHash(): Page {
  const p = location.hash.replace(/^#\/?/, '') as Page;
  return p in PAGES ? p : 'pipelines';
}

/** Asks for the admin token (http.auth_token) after the API answered 401; kept in sessionStorage. */
function TokenForm() {
  const [value, setValue] = useState('');
  return (
    <form
      class="card login"
      data-testid="token-form"
      onSubmit={(e) => {
        e.preventDefault();
        setToken(value.trim());
      }}
    >
      <h2>Admin token</h2>
      <p>
        This Tributary has an admin token (<code>http.auth_token</code>). Enter it to read and operate the pipelines; it is kept in this tab only.
      </p>
      {getToken() && <p class="error">The token was refused.</p>}
      <input type="password" name="token" autoComplete="current-password" aria-label="admin token" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
      <button type="submit">Sign in</button>
    </form>
  );
}

function App() {
  const [page, setPage] = useState<Page>(pageFromHash());
  const [, setAuthTick] = useState(0);
  useEffect(() => {
    const onHash = () => setPage(pageFromHash());
    window.addEventListener('hashchange', onHash);
    const off = onAuthChange(() => setAuthTick((n) => n + 1));
    return () => {
      window.removeEventListener('hashchange', onHash);
      off();
    };
  }, []);
  const View = PAGES[page].view;
  return (
    <>
      <header class="top">
        <h1>Tributary</h1>
        <nav>
          {(Object.keys(PAGES) as Page[]).map((p) => (
            <a key={p} href={`#/${p}`} class={p === page ? 'active' : ''} aria-current={p === page ? 'page' : undefined}>
              {PAGES[p].title}
            </a>
          ))}
        </nav>
        {getToken() && (
          <button class="link" onClick={() => setToken(null)}>
            Sign out
          </button>
        )}
      </header>
      <main>{needsToken ? <TokenForm /> : <View key={`${page}:${getToken() ?? ''}`} />}</main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
