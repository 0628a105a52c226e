import { useEffect, useState } from "react";
import { loadTokens, onTokens, type Tokens } from "../api/session";

/** The signed-in person's tokens, or null; re-renders when they change. */
export function useSession(): Tokens | null {
  const [tokens, setTokens] = useState<Tokens | null>(loadTokens);
  useEffect(() => onTokens(setTokens), []);
  return tokens;
}

export function hasRole(tokens: Tokens | null, role: "buyer" | "seller" | "admin"): boolean {
  return !!tokens?.roles.includes(role);
}
