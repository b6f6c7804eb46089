// Calls to this server's API: the key from session storage, the key prompt
// on a 401, errors as the envelope's message, and the SSE reader.

const KEY = "tessera.key";
let asking = null;

export function key() {
  return sessionStorage.getItem(KEY) || "";
}

function headers() {
  const h = { "content-type": "application/json" };
  if (key()) h.authorization = `Bearer ${key()}`;
  return h;
}

/// Shows the key dialog once, however many calls are waiting for it.
function askKey(message) {
  if (asking) return asking;
  const dialog = document.getElementById("key-dialog");
  const input = document.getElementById("key");
  document.getElementById("key-error").textContent = message || "";
  asking = new Promise((resolve) => {
    const form = document.getElementById("key-form");
    form.onsubmit = () => {
      sessionStorage.setItem(KEY, input.value.trim());
      input.value = "";
      asking = null;
      resolve();
    };
  });
  if (!dialog.open) dialog.showModal();
  input.focus();
  return asking;
}

/// A fetch that asks for a key on 401 and tries again; other errors throw
/// with the server's message.
export async function call(path, body, signal) {
  for (;;) {
    const init = { method: body ? "POST" : "GET", headers: headers(), signal };
    if (body) init.body = JSON.stringify(body);
    const resp = await fetch(path, init);
    if (resp.status === 401) {
      await askKey(key() ? "That key was refused." : "");
      continue;
    }
    if (!resp.ok) throw new Error(await message(resp));
    return resp;
  }
}

export async function json(path, body, signal) {
  return (await call(path, body, signal)).json();
}

async function message(resp) {
  try {
    const v = await resp.json();
    return (v.error && v.error.message) || `${resp.status} ${resp.statusText}`;
  } catch {
    return `${resp.status} ${resp.statusText}`;
  }
}

/// Each `data:` payload of an event stream, parsed, until `[DONE]`.
export async function* events(resp) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let end;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const event = buf.slice(0, end);
      buf = buf.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  }
}
