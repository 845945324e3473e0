// Remote text into the page. Player text is untrusted: it becomes text
// nodes, never markup. The one exception is the gateway's HTML colour form,
// and even that is rebuilt here from an allow-list: only <span class="...">
// and </span> become elements; everything else stays text.

const TAG = /<span class="([A-Za-z0-9 _-]*)">|<\/span>/g;
const ENTITY = /&(lt|gt|amp|quot|apos|#39|#x27|#\d{1,7}|#x[0-9a-fA-F]{1,6});/g;
const NAMED = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

function decodeEntities(text) {
  return text.replace(ENTITY, (whole, name) => {
    if (name in NAMED) return NAMED[name];
    const code = name[1] === "x" ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
    return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
  });
}

// A DocumentFragment of the HTML colour form: spans from the allow-list,
// the rest as text (entities decoded, since the gateway escaped them).
export function sanitizeColourHTML(html) {
  const root = document.createDocumentFragment();
  const open = [root];
  let last = 0;
  const addText = (text) => {
    if (text) open[open.length - 1].append(decodeEntities(text));
  };
  for (const match of html.matchAll(TAG)) {
    addText(html.slice(last, match.index));
    last = match.index + match[0].length;
    if (match[1] !== undefined) {
      const span = document.createElement("span");
      span.className = match[1];
      open[open.length - 1].append(span);
      open.push(span);
    } else if (open.length > 1) {
      open.pop();
    }  // a stray </span> closes nothing and is dropped
  }
  addText(html.slice(last));
  return root;
}

// Put remote `text` into `element`: coloured when the session gets the HTML
// form, else as plain text.
export function showRemote(element, text, html) {
  const value = text == null ? "" : String(text);
  if (html) element.replaceChildren(sanitizeColourHTML(value));
  else element.textContent = value;
}
