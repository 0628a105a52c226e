import { api, unwrap, type Schemas } from "./client";

export type Purpose = "attachment" | "deliverable" | "message" | "photo" | "portfolio";

/** Upload one file (multipart); the API answers with its id, which a project,
 * proposal or submission then names. */
export async function uploadFile(file: File, purpose: Purpose): Promise<Schemas["FileResponse"]> {
  const form = new FormData();
  form.append("purpose", purpose);
  form.append("file", file, file.name);
  return unwrap(
    api.POST("/api/v1/files", {
      // openapi-fetch sends a FormData body as it is, with its own boundary.
      body: form as unknown as { file: string; purpose: Purpose },
      headers: { "Idempotency-Key": crypto.randomUUID() },
    }),
  );
}
