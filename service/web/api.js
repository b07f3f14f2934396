// Calls to heedful's JSON API with a Bearer credential. The credential comes from sessionStorage,
// never from the URL, and no cookie is sent: the page holds exactly what the user gave it.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function call(path, credential, { method = "GET", body } = {}) {
  const headers = { Authorization: `Bearer ${credential}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    credentials: "omit",
  });
  if (!response.ok) throw new ApiError(response.status, await detail(response));
  return response.status === 204 ? null : response.json();
}

/** The same request, answered as a Blob (downloads). */
export async function download(path, credential) {
  const response = await fetch(path, {
    headers: { Authorization: `Bearer ${credential}` },
    cache: "no-store",
    credentials: "omit",
  });
  if (!response.ok) throw new ApiError(response.status, await detail(response));
  return response.blob();
}

async function detail(response) {
  try {
    const body = await response.json();
    return typeof body.detail === "string" ? body.detail : `request refused (${response.status})`;
  } catch {
    return `request failed (${response.status})`;
  }
}
