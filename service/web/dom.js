// Building DOM nodes without ever parsing a string as markup: memory text, evidence quotes and
// error messages are user data, so they only ever become Text nodes (textContent / append(string)).

/**
 * el("li", {class: "memory", dataset: {id}}, el("p", {text: memory.text}), button)
 * Props: text, class, dataset, on<event> handlers, and plain attributes (setAttribute: a value, never markup).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== undefined && child !== null && child !== false) node.append(child);
  }
  return node;
}

/** Sets the text of the element with this id. */
export function show(id, value) {
  document.getElementById(id).textContent = value;
}

/** A status line for people using assistive technology too (the element has role="status"). */
export function notify(message, kind = "info") {
  const notice = document.getElementById("notice");
  notice.textContent = message;
  notice.dataset.kind = kind;
}
